package bigframe

// SetDataKeep sets how much data a Scanner keeps verbatim, so tests can
// exercise the synthetic frame with small inputs; it returns a func that
// restores it.
func SetDataKeep(n int) (restore func()) {
	old := dataKeep
	dataKeep = n
	return func() { dataKeep = old }
}

// Captured returns the bytes a Scanner holds: data kept and members
// captured.
func (s *Scanner) Captured() int {
	n := len(s.raw) + len(s.name)
	for i := range s.lex.topM {
		n += len(s.lex.topM[i].raw) + len(s.lex.wrapM[i].raw)
	}
	return n
}
