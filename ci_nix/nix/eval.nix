# What ci-nix asks of a flake, answered as one JSON document.
#
#   listOnly = true   -> { attrs = [ path ... ]; groupErrors = [ { path; } ... ]; inputNames; }
#   otherwise         -> { attrs; groupErrors; inputNames; results = [ result ... ]; }
#
# A path is a list of attribute names: [ "packages" "x86_64-linux" "hello" ] or
# [ "nixosConfigurations" "web" ]. A result is
#   { path; drvPath; system; outputs = { out = "/nix/store/..."; }; }   evaluated
#   { path; error = "..."; }                                             not buildable (not a derivation)
#   { path; catchable = true; }                                          threw (throw/assert): ci-nix
#                                                                        re-evaluates it with strict = true
#                                                                        to get the message
# Errors that builtins.tryEval cannot catch (missing attribute, type error, infinite recursion)
# abort the whole evaluation; ci-nix then bisects `select` to find the failing paths.
{ flake
, systems
, outputs
, select ? null
, listOnly ? false
, strict ? false
}:
let
  inherit (builtins) attrNames concatMap deepSeq elem elemAt filter foldl' head isAttrs
    isString listToAttrs map tryEval;

  perSystemKinds = [ "packages" "devShells" "checks" ];

  # Listing a group may throw (e.g. packages.<system> = throw "..."); keep the other groups.
  group = prefix: value:
    let names = tryEval (attrNames value);
    in if names.success
       then { attrs = map (n: prefix ++ [ n ]) names.value; errors = [ ]; }
       else { attrs = [ ]; errors = [ { path = prefix; } ]; };

  groups = concatMap (kind:
    if kind == "nixosConfigurations" then
      (if flake ? nixosConfigurations then [ (group [ kind ] flake.nixosConfigurations) ] else [ ])
    else if elem kind perSystemKinds then
      concatMap (system:
        if flake ? ${kind} && flake.${kind} ? ${system}
        then [ (group [ kind system ] flake.${kind}.${system}) ]
        else [ ]) systems
    else [ ]) outputs;

  listed = concatMap (g: g.attrs) groups;
  groupErrors = concatMap (g: g.errors) groups;

  getPath = path: foldl' (value: name: value.${name}) flake path;
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

  guarded = path:
    let attempt = tryEval (let r = info path; in deepSeq r r);
    in if attempt.success then attempt.value else { inherit path; catchable = true; };

  paths = if select == null then listed else select;

  # The inputs flake.nix declares: ci-nix checks each is in the committed flake.lock.
  inputNames = attrNames (flake.inputs or { });
in
if listOnly then { attrs = listed; inherit groupErrors inputNames; }
else {
  attrs = if select == null then listed else [ ];
  inherit groupErrors inputNames;
  results = map (if strict then info else guarded) paths;
}
