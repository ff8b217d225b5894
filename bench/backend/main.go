// Command backend is a minimal HTTP app for router benchmarks: it answers
// every request with a short body, so the proxy in front is what is measured.
package main

import (
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	addr := os.Getenv("SERVER_ADDRESS") + ":" + os.Getenv("PORT")
	log.Printf("backend listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the benchmark backend\n")
	})))
}
