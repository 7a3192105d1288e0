// The pod sandbox's "pause" process: it holds the pod's namespaces and waits for SIGTERM or
// SIGINT. Built here because no image registry (and so no registry.k8s.io/pause) is reachable.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
