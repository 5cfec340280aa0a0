// clockprobe: what a Go program reads as the wall clock, for netdriver's clock tests.
//
//	clockprobe now                 the wall clock, in seconds since the epoch (with nanoseconds)
//	clockprobe watch SECS          the wall clock every 100 ms for SECS seconds, a line each
//	clockprobe thread FILE         once FILE exists: the wall clock read by a goroutine locked
//	                               to an OS thread started then
//	clockprobe exec FILE PROG...   once FILE exists: runs PROG through os/exec, copies its output
//	clockprobe bench N             nanoseconds per time.Now() over N calls
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"
)

func seconds(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// awaitFile returns once path exists, polling every 20 ms.
func awaitFile(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clockprobe now|watch SECS|thread FILE|exec FILE PROG...|bench N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "now":
		fmt.Println(seconds(time.Now()))
	case "watch":
		secs, _ := strconv.Atoi(os.Args[2])
		for i := 0; i < secs*10; i++ {
			fmt.Println(seconds(time.Now()))
			time.Sleep(100 * time.Millisecond)
		}
	case "thread":
		awaitFile(os.Args[2])
		done := make(chan string)
		go func() {
			runtime.LockOSThread()
			done <- seconds(time.Now())
		}()
		fmt.Println(<-done)
	case "exec":
		awaitFile(os.Args[2])
		out, err := exec.Command(os.Args[3], os.Args[4:]...).Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(out)
	case "bench":
		n, _ := strconv.Atoi(os.Args[2])
		start := time.Now()
		var last time.Time
		for i := 0; i < n; i++ {
			last = time.Now()
		}
		_ = last
		fmt.Printf("%.2f\n", float64(time.Since(start).Nanoseconds())/float64(n))
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
