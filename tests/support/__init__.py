"""What the tests share: loopback targets, fakes for the run's seams, results factories."""
