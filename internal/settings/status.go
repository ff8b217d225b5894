package settings

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusSet is a set of accepted HTTP statuses, as inclusive ranges.
type StatusSet [][2]int

// ParseStatusSet reads "200-399" or "200,204,300-302".
func ParseStatusSet(s string) (StatusSet, error) {
	var set StatusSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("accepted statuses %q: write codes from 100 to 599 as a list of codes or ranges, like \"200-399\" or \"200,204\"", s)
		}
		set = append(set, [2]int{a, b})
	}
	return set, nil
}

// Contains reports whether code is in the set.
func (set StatusSet) Contains(code int) bool {
	for _, r := range set {
		if code >= r[0] && code <= r[1] {
			return true
		}
	}
	return false
}
