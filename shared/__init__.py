"""Code both sides share: the step type, protocol, text state and client library. No torch, no GL."""
