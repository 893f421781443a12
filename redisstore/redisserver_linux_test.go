package redisstore

import "syscall"

// childProcAttr kills redis-server with the test binary, even if the binary crashes.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
