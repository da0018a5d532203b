// Package kubeconfig turns a kubeconfig from a Secret into a rest.Config
// without letting its author act on the router's host.
//
// # What is refused
//
// A kubeconfig is read as data: only the current context is used, and of
// its cluster and user only the fields that carry their value inline.
// These are refused, before any client is built or connection made:
//
//   - user exec and auth-provider: they run a program or a plugin inside
//     the router. Allowed by Insecure.Exec (--insecure-kubeconfig-exec).
//   - cluster insecure-skip-tls-verify: the credentials go to whoever
//     answers. Allowed by Insecure.TLS (--insecure-kubeconfig-tls).
//   - user tokenFile, client-certificate and client-key, and cluster
//     certificate-authority: file paths, read on the router's host (in a
//     pod, tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
//     hands out the router's own identity). Always refused: each has an
//     inline twin (token, client-certificate-data, client-key-data,
//     certificate-authority-data).
//
// Accepted: server, tls-server-name, certificate-authority-data,
// proxy-url, disable-compression; token, client-certificate-data,
// client-key-data, username and password; and the act-as (impersonation)
// fields, which ask the destination's API server to check a permission of
// the kubeconfig's own identity and read nothing on the router's host.
//
// Contexts, clusters and users other than the current context's are
// neither checked nor used. Errors name fields (user "u": tokenFile),
// never their values, and never quote the kubeconfig.
package kubeconfig
