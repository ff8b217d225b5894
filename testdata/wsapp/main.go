// Command wsapp is a test app for long-lived connections: GET / answers
// "version=$VERSION …", and GET /ws with "Upgrade: websocket" switches
// protocols and then echoes each line it gets as "v$VERSION: line". It
// stands in for a WebSocket server: the router passes any upgraded
// connection through as raw bytes, so framing does not matter to it.
package main

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	version := os.Getenv("VERSION")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "version=%s instance=%s\n", version, os.Getenv("SLIPWAY_INSTANCE_ID"))
	})
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want Upgrade: websocket", http.StatusBadRequest)
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		in := bufio.NewScanner(rw)
		for in.Scan() {
			fmt.Fprintf(rw, "v%s: %s\n", version, in.Text())
			rw.Flush()
		}
	})
	addr := os.Getenv("SERVER_ADDRESS") + ":" + os.Getenv("PORT")
	log.Printf("wsapp version %s listening on %s", version, addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
