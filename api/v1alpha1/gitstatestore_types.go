package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Auth methods of a GitStateStore.
const (
	BasicAuthMethod = "basicAuth"
	SSHAuthMethod   = "ssh"
)

// GitStateStoreSpec says where and how the router writes a Git state repo.
// +kubebuilder:validation:XValidation:rule="self.authMethod != 'ssh' || self.url.startsWith('ssh://')",message="authMethod ssh needs an ssh:// url"
// +kubebuilder:validation:XValidation:rule="self.authMethod != 'ssh' || has(self.secretRef)",message="authMethod ssh needs a secretRef holding sshPrivateKey and knownHosts"
type GitStateStoreSpec struct {
	// URL of the repository: http://, https:// or ssh://.
	// +required
	// +kubebuilder:validation:Pattern=`^(https?|ssh)://[^\s]+$`
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`

	// Branch the router commits to. Created on the first push if missing.
	// +optional
	// +kubebuilder:default=main
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`
	// +kubebuilder:validation:MaxLength=255
	Branch string `json:"branch,omitempty"`

	// Path inside the repository under which destinations' directories
	// live. Empty means the repository root.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(/[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)*$`
	// +kubebuilder:validation:MaxLength=512
	Path string `json:"path,omitempty"`

	// AuthMethod selects the keys read from the Secret: basicAuth reads
	// username and password, ssh reads sshPrivateKey and knownHosts.
	// +optional
	// +kubebuilder:default=basicAuth
	// +kubebuilder:validation:Enum=basicAuth;ssh
	AuthMethod string `json:"authMethod,omitempty"`

	// SecretRef holds the credentials. Optional for basicAuth against a
	// repository that needs none.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`

	// Author of the router's commits.
	// +optional
	Author GitAuthor `json:"author,omitempty"`
}

// GitAuthor is the name and email on the router's commits.
type GitAuthor struct {
	// Name of the author.
	// +optional
	// +kubebuilder:default=switchyard
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`

	// Email of the author.
	// +optional
	// +kubebuilder:default="switchyard@switchyard.dev"
	// +kubebuilder:validation:MaxLength=256
	Email string `json:"email,omitempty"`
}

// GitStateStore is a Git repository the router writes rendered manifests to.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=switchyard
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.spec.branch`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitStateStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GitStateStoreSpec `json:"spec,omitempty"`
	Status StateStoreStatus  `json:"status,omitempty"`
}

// GitStateStoreList is a list of GitStateStores.
// +kubebuilder:object:root=true
type GitStateStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitStateStore `json:"items"`
}
