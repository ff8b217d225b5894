package scm

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/slipway-dev/slipway/internal/store"
)

// readable turns the message of a deploy call into one a person reads in
// `slipway deployments`, and fills in the author if the call gave none.
// The GitHub Action and the Pipelines tasks send a JSON object:
//
//	{"type":"deployment","sha":"…","repoName":"acme/promo","actor":"ana","commitMessage":"Fix the cart\n\n…"}
//	{"type":"deployment","commitId":"…","buildNumber":"20260102.1","repoName":"promo",…}
//
// which becomes "Fix the cart (commit 1a2b3c4 by ana in acme/promo)",
// with the actor as the author. Any other message is kept as it is, line
// ends made Unix ones (and is checked like any deployment's message).
func readable(message, author string) (string, string) {
	message = strings.ReplaceAll(message, "\r\n", "\n")
	var m map[string]any
	if !strings.HasPrefix(strings.TrimSpace(message), "{") || json.Unmarshal([]byte(message), &m) != nil {
		return message, author
	}
	field := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := m[k].(string); ok && strings.TrimSpace(v) != "" {
				return oneLine(v)
			}
		}
		return ""
	}
	commit, actor := field("sha", "commitId"), field("actor")
	if commit == "" && actor == "" {
		return message, author // some other JSON: as it came
	}
	var desc []string
	if commit != "" {
		desc = append(desc, "commit "+commit[:min(len(commit), 7)])
	}
	if actor != "" {
		desc = append(desc, "by "+actor)
	}
	if repo := field("repoName"); repo != "" {
		desc = append(desc, "in "+repo)
	}
	text := strings.Join(desc, " ")
	if build := field("buildNumber"); build != "" {
		text += ", build " + build
	}
	if subject := field("commitMessage"); subject != "" {
		text = subject + " (" + text + ")"
	}
	if author == "" {
		author = store.Truncate(actor, store.MaxAuthorBytes)
	}
	return store.Truncate(text, store.MaxMessageBytes), author
}

// oneLine is the first line of s, without control characters.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
}
