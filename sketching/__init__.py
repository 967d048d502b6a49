"""Random sketch operators and the sketched Newton (Iterative Hessian Sketch) strategy."""
