"""Operations scripts and benchmarks; testkit/ holds the fakes and the process harness that
the tests and the benchmarks share (ops/ never imports tests/)."""
