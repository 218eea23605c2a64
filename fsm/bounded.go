package fsm

// keepLast returns the newest n elements of s (s itself when it is short
// enough). The dropped elements are zeroed so that the backing array does
// not keep pointers alive.
func keepLast[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	drop := len(s) - n
	clear(s[:drop])
	return s[drop:]
}
