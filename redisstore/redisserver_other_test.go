//go:build !linux

package redisstore

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }
