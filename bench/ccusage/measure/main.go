// Command measure runs a command and reports its wall time and peak
// resident set size, for machines without GNU time:
//
//	measure [-o FILE] -- COMMAND [ARG...]
//
// It writes "WALL_S MAXRSS_KB USER_S SYS_S" (the format of GNU time
// -f '%e %M %U %S') to FILE, or to stderr, and exits with the command's exit
// code. The peak RSS is the largest of the command and the descendants it
// waited for (getrusage's ru_maxrss).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	outPath := fs.String("o", "", "write the figures to `file` instead of stderr")
	fs.Parse(os.Args[1:])
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: measure [-o FILE] -- COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	began := time.Now()
	err := cmd.Run()
	wall := time.Since(began)
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(127)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = int64(ru.Maxrss) // KiB on Linux
	}
	user, sys := cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()
	var w io.Writer = os.Stderr
	if *outPath != "" {
		f, err := os.Create(*outPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "measure:", err)
			os.Exit(2)
		}
		defer f.Close()
		w = f
	}
	fmt.Fprintf(w, "%.2f %d %.2f %.2f\n", wall.Seconds(), rss, user.Seconds(), sys.Seconds())
	if code != 0 {
		if f, ok := w.(*os.File); ok && f != os.Stderr {
			f.Close()
		}
		os.Exit(code)
	}
}
