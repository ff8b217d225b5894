// Command slipway is the Slipway daemon (`slipway server`) and its CLI.
package main

import (
	"os"

	"github.com/slipway-dev/slipway/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
