package workflow

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// PipelineAccessLabel, set to "true" on a Secret or ConfigMap in the
// router's namespace, lets pipelines use it (envFrom, env, volumes,
// imagePullSecrets). Pipelines run in the router's namespace, which also
// holds the router's own credentials (state stores, destinations): a
// Promise may not hand those to its containers.
const PipelineAccessLabel = "switchyard.dev/pipeline-access"

// Refs are the Secrets and ConfigMaps a pipeline uses, by name.
type Refs struct {
	Secrets, ConfigMaps []string
}

// References lists what p's containers and volumes name, sorted.
func References(p v1alpha1.Pipeline) (Refs, error) {
	var r Refs
	volumes, err := Volumes(p)
	if err != nil {
		return r, err
	}
	for _, v := range volumes {
		switch {
		case v.Secret != nil:
			r.Secrets = append(r.Secrets, v.Secret.SecretName)
		case v.ConfigMap != nil:
			r.ConfigMaps = append(r.ConfigMaps, v.ConfigMap.Name)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					r.Secrets = append(r.Secrets, s.Secret.Name)
				}
				if s.ConfigMap != nil {
					r.ConfigMaps = append(r.ConfigMaps, s.ConfigMap.Name)
				}
			}
		}
	}
	for _, s := range p.Spec.ImagePullSecrets {
		r.Secrets = append(r.Secrets, s.Name)
	}
	for _, c := range p.Spec.Containers {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				r.Secrets = append(r.Secrets, e.SecretRef.Name)
			}
			if e.ConfigMapRef != nil {
				r.ConfigMaps = append(r.ConfigMaps, e.ConfigMapRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r.Secrets = append(r.Secrets, e.ValueFrom.SecretKeyRef.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				r.ConfigMaps = append(r.ConfigMaps, e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	}
	slices.Sort(r.Secrets)
	slices.Sort(r.ConfigMaps)
	r.Secrets, r.ConfigMaps = slices.Compact(r.Secrets), slices.Compact(r.ConfigMaps)
	return r, nil
}

// checkVolumeKinds refuses volumes other than emptyDir, configMap, secret,
// downwardAPI and projected (of those): a pipeline Pod in the router's
// namespace gets no host paths, claims or other sources.
func checkVolumeKinds(volumes []corev1.Volume) error {
	for _, v := range volumes {
		s := v.VolumeSource
		ok := s.EmptyDir != nil || s.ConfigMap != nil || s.Secret != nil || s.DownwardAPI != nil
		if p := s.Projected; p != nil {
			ok = true
			for _, src := range p.Sources {
				if src.ServiceAccountToken != nil || src.ClusterTrustBundle != nil || src.PodCertificate != nil {
					ok = false
				}
			}
		}
		if !ok {
			return fmt.Errorf("volume %q: only emptyDir, configMap, secret, downwardAPI and projected (of those) volumes are allowed in a pipeline", v.Name)
		}
	}
	return nil
}
