# ci-nix's evaluation worker: what it answers and how, in the notes at the end of this file.
# What an error's trace runs through comes first: Nix 2.8 with --show-trace reads this file
# up to each frame's line, a byte a read, for every frame of a task that aborts the worker
# (~130,000 reads, 0.05 CPU-s, a worker; ~30,000 so).
{ flake
, tag
, systems
, outputs
, subdir ? ""
, list ? false
, tasks ? null
}:
let
  inherit (builtins) attrNames concatMap elem elemAt foldl' genList head isAttrs isString
    length listToAttrs map toJSON trace tryEval;

  # foldl' is a loop in Nix's evaluator (no deep C++ stack however many tasks), and forcing its
  # accumulator orders the traces: begin, evaluate, done.
  evaluateAll = foldl' (count: i:
    trace (emit { begin = i; })
      (trace (emit { done = i; result = run (elemAt taskList i); }) (count + 1)))
    0 (genList (i: i) (length taskList));

  # A group that threw under tryEval while listed: listed again without it, for the error text.
  run = task:
    if task.group or false
    then { path = task.path; error = "listed without error on its own: "
           + toString (length (attrNames (getPath task.path))) + " attributes"; }
    else info task.path;

  info = path:
    let
      value = getPath path;
      drv = if isNixos path then value.config.system.build.toplevel else value;
      system = if isNixos path then nixosSystem value drv else elemAt path 1;
    in
    if (drv.type or null) != "derivation" then
      { inherit path; error = "not a derivation (${builtins.typeOf drv}); only derivations can be built"; }
    else {
      inherit path system;
      drvPath = drv.drvPath;
      outputs = listToAttrs (map (o: { name = o; value = drv.${o}.outPath; }) (drv.outputs or [ "out" ]));
    };

  getPath = path:
    foldl' (value: name: value.${name}) (if isNixos path then freshOutputs path else top) path;

  emit = value: "ci-nix:${tag}:" + toJSON value;

  perSystemKinds = [ "packages" "devShells" "checks" ];

  # Listing a group may throw (e.g. packages.<system> = throw "..."); keep the other groups.
  group = prefix: value:
    let names = tryEval (attrNames value);
    in if names.success
       then { attrs = map (n: prefix ++ [ n ]) names.value; errors = [ ]; }
       else { attrs = [ ]; errors = [ prefix ]; };

  # What the flake's source says about its commit (rev, shortRev, lastModified, revCount,
  # dirtyRev, ...: every sourceInfo attribute but outPath and narHash, which the tree's contents
  # decide) answers {"commit": NAME} when this worker's evaluation first reads it. A flake whose
  # evaluation reads none evaluates the same at every commit of the same tree: the evaluation
  # cache keys it by the tree (ci_nix/evalcache.py).
  callable = flake ? sourceInfo.outPath && flake ? inputs;
  sourceInfo = builtins.mapAttrs (name: value:
    if name == "outPath" || name == "narHash" then value
    else trace (emit { commit = name; }) value) flake.sourceInfo;

  # The flake's outputs from a call of its `outputs` function as Nix's call-flake.nix makes it,
  # with that self (modules of other repos reading it through specialArgs included).
  callOutputs = _:
    let
      src = flake.sourceInfo.outPath;
      dir = if subdir == "" then src else src + "/${subdir}";
      self = outputs // sourceInfo // {
        inherit (flake) outPath inputs;
        inherit outputs sourceInfo;
        _type = "flake";
      };
      outputs = (import (dir + "/flake.nix")).outputs (flake.inputs // { inherit self; });
    in outputs;

  # Nix's own value when the flake cannot be called so: then its commit counts as read.
  top = if callable then callOutputs null else trace (emit { commit = "?"; }) flake;

  groups = concatMap (kind:
    if kind == "nixosConfigurations" then
      (if top ? nixosConfigurations then [ (group [ kind ] top.nixosConfigurations) ] else [ ])
    else if elem kind perSystemKinds then
      concatMap (system:
        if top ? ${kind} && top.${kind} ? ${system}
        then [ (group [ kind system ] top.${kind}.${system}) ]
        else [ ]) systems
    else [ ]) outputs;

  listed = concatMap (g: g.attrs) groups;

  # A NixOS configuration is a world of its own (a module system, its own pkgs) that stays
  # reachable once evaluated through the flake's outputs. Each one is read from a fresh call of
  # the flake's `outputs` function, so that it is garbage once done and a worker's memory stays
  # that of one host. Imported files (nixpkgs, shared modules) stay cached, so a worker still
  # pays for them once.
  freshOutputs = path: if callable then callOutputs path else top;

  isNixos = path: head path == "nixosConfigurations";

  # Without nixpkgs.hostPlatform the toplevel derivation still says where it builds;
  # null (no system known) makes ci-nix fail the host rather than guess.
  nixosSystem = config: toplevel:
    let hostPlatform = config.config.nixpkgs.hostPlatform or null;
        own = toplevel.system or null;
    in if isString hostPlatform then hostPlatform
       else if isAttrs hostPlatform && hostPlatform ? system then hostPlatform.system
       else if isString own then own
       else config.pkgs.stdenv.hostPlatform.system or null;

  taskList = if tasks == null then map (path: { inherit path; }) listed else tasks;

  listing = foldl' (count: path: trace (emit { attr = path; }) (count + 1)) 0 listed;

  # The inputs flake.nix declares: ci-nix checks each is in the committed flake.lock.
  inputNames = attrNames (flake.inputs or { });
  groupErrors = concatMap (g: g.errors) groups;

  # Read directly, not through `sourceInfo` above: eval.nix reading it is not the flake reading
  # it. `callable` is what the evaluation forces first anyway (the flake itself).
  source = if callable then flake.sourceInfo.rev or null else null;
in
builtins.seq (trace (emit { inherit source; }) null) (
  if list
  then builtins.seq listing (trace (emit { listed = { inherit groupErrors inputNames; }; }) evaluateAll)
  else evaluateAll)

# What ci-nix asks of a flake: one evaluation worker's job, answered line by line on stderr.
#
# Each answer is a `builtins.trace` line "trace: ci-nix:<tag>:<json>", written the moment it is
# known (`tag`: ci-nix's secret for this run, so that a flake's own trace cannot pass for one):
#
#   list = true:  {"attr": PATH} for every attribute to evaluate, then
#                 {"listed": {"groupErrors": [PATH ...], "inputNames": [NAME ...]}}
#   per task i:   {"begin": i} when the task starts, {"done": i, "result": RESULT} when it is done
#   any time:     {"commit": NAME} when the evaluation first reads the flake's NAME (rev, ...)
#   first:        {"source": REV} the commit Nix read the flake's source at (null: none, e.g. a
#                 work tree with uncommitted changes), before any other answer
#
# The tasks are `tasks` (a list of { path; group ? false; }), or with tasks = null every listed
# attribute in order. A PATH is a list of names: [ "packages" "x86_64-linux" "hello" ] or
# [ "nixosConfigurations" "web" ]. A RESULT is
#   { path; drvPath; system; outputs = { out = "/nix/store/..."; }; }   evaluated
#   { path; error = "..."; }                                             not buildable
# Any error in a task (throw, assert, missing attribute, ...) aborts the process: ci-nix reads the
# error from stderr, blames the task that began last, and starts a fresh worker on the rest.
