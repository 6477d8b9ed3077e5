{
  description = "ci-nix evaluation helper: ci-nix overrides the input `flake` with the flake under test";

  # Never fetched: ci-nix always passes --override-input flake <ref>.
  inputs.flake.url = "path:/dev/null";

  outputs = { self, flake }: {
    lib.ciNix = args: import ./eval.nix ({ inherit flake; } // args);
  };
}
