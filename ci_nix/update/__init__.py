"""Update flake inputs, commit the new lock files to a branch, and open/update/close its MR.

One module per concept, lower ones first: `models` (what an update is asked and what it did),
`credentials` (git's token header and author), `locks` (the Nix lock update in a private
worktree and its changelog), `markdown` (title, body and commit message), `push` (the leased,
retried branch push), `publish` (the branch and its merge request), and `repo` (one repository
end to end, with `--verify`).
"""
