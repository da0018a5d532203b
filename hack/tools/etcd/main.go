// Command etcd is the etcd server used by the envtest control plane, built
// from Go modules so tests need no release download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
