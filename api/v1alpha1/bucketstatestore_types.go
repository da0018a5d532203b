package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Auth methods of a BucketStateStore.
const (
	// AccessKeyAuthMethod reads accessKeyID and secretAccessKey from the
	// store's Secret.
	AccessKeyAuthMethod = "accessKey"
	// IAMAuthMethod uses the AWS SDK's default credential chain: the
	// router's environment, web identity (IRSA), or the instance role.
	IAMAuthMethod = "IAM"
)

// BucketStateStoreSpec says where and how the router writes an S3-compatible
// bucket.
// +kubebuilder:validation:XValidation:rule="self.authMethod != 'accessKey' || has(self.secretRef)",message="authMethod accessKey needs a secretRef holding accessKeyID and secretAccessKey"
// +kubebuilder:validation:XValidation:rule="!self.endpoint.startsWith('http://') || self.insecure",message="an http:// endpoint needs insecure: true"
// +kubebuilder:validation:XValidation:rule="!self.endpoint.startsWith('https://') || !self.insecure",message="an https:// endpoint contradicts insecure: true"
type BucketStateStoreSpec struct {
	// Endpoint of the S3 API: host[:port], or a URL with http:// or
	// https://. Without a scheme, insecure chooses http.
	// +required
	// +kubebuilder:validation:Pattern=`^(https?://)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$`
	// +kubebuilder:validation:MaxLength=512
	Endpoint string `json:"endpoint"`

	// BucketName is the bucket the router writes to. It must exist.
	// +required
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	BucketName string `json:"bucketName"`

	// Region of the bucket.
	// +optional
	// +kubebuilder:default=us-east-1
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]+$`
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region,omitempty"`

	// Path (key prefix) inside the bucket under which destinations'
	// directories live. Empty means the bucket root.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(/[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)*$`
	// +kubebuilder:validation:MaxLength=512
	Path string `json:"path,omitempty"`

	// Insecure talks plain HTTP to the endpoint (LocalStack, MinIO in a
	// test cluster).
	// +optional
	Insecure bool `json:"insecure,omitempty"`

	// AuthMethod is accessKey (keys from secretRef) or IAM (the SDK's
	// default credential chain).
	// +optional
	// +kubebuilder:default=accessKey
	// +kubebuilder:validation:Enum=accessKey;IAM
	AuthMethod string `json:"authMethod,omitempty"`

	// SecretRef holds accessKeyID and secretAccessKey for authMethod
	// accessKey.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// BucketStateStore is an S3-compatible bucket the router writes rendered
// manifests to; Flux reads it with a Bucket source.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=switchyard
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.bucketName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BucketStateStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BucketStateStoreSpec `json:"spec,omitempty"`
	Status StateStoreStatus     `json:"status,omitempty"`
}

// BucketStateStoreList is a list of BucketStateStores.
// +kubebuilder:object:root=true
type BucketStateStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BucketStateStore `json:"items"`
}
