//go:build !unix

package runway

import "time"

// cpuTime is not measured on this platform; the cpu-ns/op metrics read 0.
func cpuTime() time.Duration { return 0 }
