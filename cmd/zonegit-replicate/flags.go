package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// newFlagSet returns the flag set of subcommand name. It returns errors
// rather than exiting, so the subcommand picks the exit code, and writes
// -h and flag errors to stderr with the rest of the command's messages.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs parses args into fs, then refuses positional arguments (no
// subcommand takes any) and names the first of the required flags left
// empty. Its error goes to parseFailed.
func parseArgs(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	return nil
}

// parseFailed reports a failed parse of subcommand cmd's flags and returns
// its exit code: exitOK for -h, whose usage the flag set has printed, and
// exitUsage for anything else.
func parseFailed(stderr io.Writer, cmd string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return failUsage(stderr, "%s: %v", cmd, err)
}

// fail prints "zonegit-replicate <message>" on stderr and returns
// exitFailed; the message starts with the subcommand's name.
func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "zonegit-replicate "+format+"\n", args...)
	return exitFailed
}

// failUsage is fail for a mistake in the command line: exit 2, not 1.
func failUsage(stderr io.Writer, format string, args ...any) int {
	fail(stderr, format, args...)
	return exitUsage
}

// clientToken reads the bearer token a client sends from a --token-file
// ("" for none), trimming the trailing newline editors add.
func clientToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}
