"""The binary cache: which outputs it already has (narinfo queries), and pushing what is new.

Backends: attic (`attic push`), cachix (`cachix push`) and nix (`nix copy --to URL`). Transient
trouble (timeouts, 5xx, dropped connections, their equivalents in the clients' error texts) is
retried with exponential backoff and jitter; a push that still fails becomes a JUnit case under
classname `ci-nix.cache` that fails the run only with `cache.required: true`.

One module per concept, lower ones first: `retry` (the backoff policy), `client` (narinfo
queries over threaded HTTP with a watchdog, and file:// caches), `backends` (attic, cachix and
`nix copy` behind one protocol; the configured `Cache`), and the two pipeline stages `skip`
(take cached jobs out of a plan) and `push` (push what passed).
"""
