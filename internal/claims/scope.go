package claims

import (
	"strings"

	"github.com/switchyard-dev/switchyard/api/v1alpha1"
)

// NoEndpoint is the AWS scope value of every destination without
// spec.aws: they all share one namespace of keys, the safe side when the
// router cannot tell where their resources live.
const NoEndpoint = "aws:none"

// ScopeValue is d's value in scope: holders on destinations with equal
// values compete for keys.
//
//   - Destination: the destination's name.
//   - AWS: the spec.aws endpoint (lower case, no trailing slash; empty and
//     the region's public DynamoDB endpoint are one) and region, or
//     NoEndpoint. Two accounts behind one endpoint and region share it:
//     the router does not know the account.
//   - Global: one value.
func ScopeValue(d *v1alpha1.Destination, scope v1alpha1.ClaimScope) string {
	switch scope {
	case v1alpha1.ClaimScopeDestination:
		return "destination:" + d.Name
	case v1alpha1.ClaimScopeAWS:
		if d.Spec.AWS == nil {
			return NoEndpoint
		}
		region := strings.ToLower(d.Spec.AWS.Region)
		endpoint := strings.TrimRight(strings.ToLower(d.Spec.AWS.Endpoint), "/")
		if endpoint == "https://dynamodb."+region+".amazonaws.com" {
			endpoint = ""
		}
		return "aws:" + endpoint + "|" + region
	}
	return "global"
}

// ForDestinations resolves scope values from a list of destinations; a
// destination not in it is unknown.
func ForDestinations(dests []v1alpha1.Destination) Resolver {
	return func(name string, scope v1alpha1.ClaimScope) (string, bool) {
		for k := range dests {
			if dests[k].Name == name {
				return ScopeValue(&dests[k], scope), true
			}
		}
		return "", false
	}
}
