// Command zonegit-replicate serves, pulls, imports and checks zonegit
// repositories by hand: serve | pull | refs | import | fsck, and runs a
// secondary daemon: secondary.
//
// Exit codes: 0 ok, 1 failed, 2 usage. A failure is always 1 with a
// message, never a Go panic's exit status 2, which would read as a usage
// error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes shared by every subcommand.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// command is one subcommand. run gets the arguments after the subcommand
// name and returns an exit code; it writes results to stdout and progress
// and errors to stderr.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is filled by init functions in each subcommand's file, so each
// subcommand lives in a file of its own.
var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary: summary, run: run}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: zonegit-replicate <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'zonegit-replicate <command> -h' for a command's flags.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintf(stdout, "zonegit-replicate %s\n", version)
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "zonegit-replicate: unknown command %q\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return runGuarded(ctx, args[0], cmd, args[1:], stdout, stderr)
}

// runGuarded runs a subcommand; a panic that reaches it (a bug: damaged
// repositories and full disks are errors by then) fails the command with
// exit 1 and the stack for a bug report, instead of the runtime's exit 2.
func runGuarded(ctx context.Context, name string, cmd command, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "zonegit-replicate %s: internal error: %v\n%s", name, p, debug.Stack())
			code = exitFailed
		}
	}()
	return cmd.run(ctx, args, stdout, stderr)
}
