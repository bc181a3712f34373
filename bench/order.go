package main

import "slices"

// runOrder returns the order of the contenders in repetition rep: a
// rotation of names, except that pgflight runs right next to none, its
// baseline for throughput (after it in even repetitions, before it in odd
// ones), so that the two see as alike a background load as possible.
// Without none, it is a plain rotation.
func runOrder(names []string, rep int) []string {
	if !slices.Contains(names, "none") {
		order := make([]string, 0, len(names))
		for i := range names {
			order = append(order, names[(i+rep)%len(names)])
		}
		return order
	}
	var rest []string
	for _, n := range names {
		if n != "pgflight" {
			rest = append(rest, n)
		}
	}
	if len(rest) == 0 {
		return names
	}
	var order []string
	for i := range rest {
		n := rest[(i+rep)%len(rest)]
		if n == "none" && len(rest) < len(names) && rep%2 == 1 {
			order = append(order, "pgflight")
		}
		order = append(order, n)
		if n == "none" && len(rest) < len(names) && rep%2 == 0 {
			order = append(order, "pgflight")
		}
	}
	if !slices.Contains(order, "pgflight") && len(rest) < len(names) {
		order = append(order, "pgflight") // no none to pair with
	}
	return order
}
