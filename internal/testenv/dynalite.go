package testenv

import (
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dynalite is a DynamoDB wire endpoint (npm dynalite) on loopback.
type Dynalite struct {
	*Process
	// Endpoint is its URL, for the AWS SDK's BaseEndpoint.
	Endpoint string
}

// StartDynalite installs dynalite with hack/dynalite.sh when needed
// ($DYNALITE names an installed executable) and starts it, keeping its
// tables in memory.
func StartDynalite(dir string) (*Dynalite, error) {
	bin := os.Getenv("DYNALITE")
	if bin == "" {
		var err error
		if bin, err = script("dynalite.sh"); err != nil {
			return nil, err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := StartProcess(dir, "dynalite", bin, nil, "--host", "127.0.0.1", "--port", port)
	if err != nil {
		return nil, err
	}
	if err := p.waitListening(addr, 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return &Dynalite{Process: p, Endpoint: "http://" + addr}, nil
}

// ACKTableCRD is the ACK stand-in's Table CRD file.
func ACKTableCRD() string {
	return filepath.Join(RepoRoot(), "internal", "testenv", "testdata", "ack-standin-tables-crd.yaml")
}
