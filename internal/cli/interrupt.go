package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway-dev/slipway/internal/api"
)

// errDetached says the user stopped following a deployment that goes on.
var errDetached = errors.New("stopped following")

// onInterrupt watches for Ctrl-C while a deployment is followed and asks
// whether to cancel it. Yes cancels it (and following goes on until it has
// ended); no, an empty answer or a second Ctrl-C stop following and leave
// it running, by calling detach. It returns a function that stops watching.
func onInterrupt(cmd *cobra.Command, g *globals, d api.Deployment, detach func()) func() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	ctx, cancel := context.WithCancel(cmd.Context())
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
		errw := cmd.ErrOrStderr()
		fmt.Fprintf(errw, "\nCancel deployment #%d of %s? The previous release keeps serving. [y/N] ", d.ID, d.App)
		answer := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			answer <- strings.ToLower(strings.TrimSpace(line))
		}()
		select {
		case <-ctx.Done():
			return
		case a := <-answer:
			if a == "y" || a == "yes" {
				path := "/api/v1/apps/" + url.PathEscape(d.App) + "/deployments/current/cancel"
				if err := g.client().do(ctx, http.MethodPost, path, nil, nil); err != nil {
					fmt.Fprintf(errw, "Could not cancel: %v\n", err)
				}
				return
			}
		case <-sigs:
		}
		fmt.Fprintf(errw, "Deployment #%d goes on; follow it with: %s\n", d.ID, showCommand(d, true))
		detach()
	}()
	return func() {
		signal.Stop(sigs)
		cancel()
	}
}
