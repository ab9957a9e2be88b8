"""What the tests share: loopback targets (`http`), the CLI as a child process (`cli`), waits on
conditions (`wait`), fakes for the run's seams on a manual clock (`fakes`), the results factory
(`results`) and the checks many tests make on results (`checks`)."""
