// Command wsapp is a test app for long-lived connections: GET / answers
// "version=$VERSION …", GET /ws is a WebSocket that answers each text
// message with "v$VERSION: message", and GET /events is a stream of
// server-sent events, one a second. It closes a WebSocket as servers do:
// it answers the client's close frame with its own, then hangs up.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	version := os.Getenv("VERSION")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "version=%s instance=%s\n", version, os.Getenv("SLIPWAY_INSTANCE_ID"))
	})
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		for {
			kind, msg, err := conn.ReadMessage()
			if err != nil {
				log.Printf("websocket ended: %v", err)
				return
			}
			if err := conn.WriteMessage(kind, fmt.Appendf(nil, "v%s: %s", version, msg)); err != nil {
				return
			}
		}
	})
	http.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: v%s event %d\n\n", version, i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
		}
	})
	addr := os.Getenv("SERVER_ADDRESS") + ":" + os.Getenv("PORT")
	log.Printf("wsapp version %s listening on %s", version, addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
