package workflow

import (
	"os"
	"syscall"
)

// openNoFollow opens p for reading, refusing a symbolic link put there
// after the walk saw a regular file.
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
