"""A report holding no line of Nix's whose only failure evidence is a builder's own output.

`diagnose.BUILDERS_VERDICTS` is a table of builders' verdict lines (make's, compilers', test
runners' …); a block of a builder's output holding one reads as a failed build wherever the copy
put it: fenced, markdown-quoted, indented, behind `nix build -L`'s `name> `, or bare. The false
reds such a rule could bring are in tests/test_log_adversary.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ci_nix import diagnose
from ci_nix.diagnose import Kind
from ci_nix.models import FailureType

# each verdict of the table as the tool prints it (the table's name for it, the line)
VERDICTS = [
    ("make", "make: *** [Makefile:12: all] Error 2"),
    ("make", "make[2]: *** [src/CMakeFiles/hello.dir/build.make:76: src/hello.o] Error 1"),
    ("make", "make: *** No rule to make target 'install'.  Stop."),
    ("make", "*** Error code 1"),
    ("make", "make-linux.mk:162: *** FATAL: architecture could not be determined.  Stop."),
    ("make", "make: *** [Makefile:178: build/emoji_u1f4ab.png] Segmentation fault"),
    ("compiler", "src/main.c:12:5: error: 'foo' undeclared (first use in this function)"),
    ("compiler", "lib/x.cpp:3:10: fatal error: boost/asio.hpp: No such file or directory"),
    ("compiler", "src/Lib.hs:42:7: error: [GHC-88464]"),
    ("compiler", "src/Lib.hs:(12,3)-(14,5): error:"),
    ("compiler", "src/index.ts(3,7): error TS2322: Type 'string' is not assignable to 'number'."),
    ("compiler", "Main.java:5: error: cannot find symbol"),
    ("compiler", "src/app.nim(12, 3) Error: undeclared identifier: 'foo'"),
    ("compiler", "/build/src/App.csproj : error NU1101: Unable to find package Foo."),
    ("compiler", "./cmd/main.go:12:3: undefined: foo"),
    ("kotlinc", "e: file:///build/source/app/src/Main.kt:12:3 Unresolved reference: foo"),
    ("javascript", "Found 3 errors in 2 files."),
    ("javascript", "✘ [ERROR] Could not resolve \"react\""),
    ("javascript", "error during build:"),
    ("javascript", "webpack 5.88.2 compiled with 1 error in 1234 ms"),
    ("javascript", "Failed to compile."),
    ("driver", "collect2: error: ld returned 1 exit status"),
    ("driver", "clang: error: linker command failed with exit code 1 (use -v to see invocation)"),
    ("driver", "ld.lld: error: undefined symbol: ssl_init"),
    ("driver", "emcc: error: libz.so.1.2.11: No such file or directory"),
    ("ld", "/build/source/main.c:(.text+0x1a): undefined reference to `SSL_new'"),
    ("ld", "ld: cannot find -lssl: No such file or directory"),
    ("rustc", "error[E0425]: cannot find value `x` in this scope"),
    ("rustc", "error: aborting due to 2 previous errors"),
    ("rustc", "error: linker `cc` not found"),
    ("cargo", "error: could not compile `hello` (bin \"hello\") due to 1 previous error"),
    ("cargo", "error: failed to run custom build command for `openssl-sys v0.9.99`"),
    ("cargo", "test result: FAILED. 10 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"),
    ("cargo", "error: no matching version `= 1.0.32` found for package `serde_json`"),
    ("cargo", "error: failed to load manifest for workspace member `/build/source/tests`"),
    ("cmake", "CMake Error at CMakeLists.txt:20 (find_package):"),
    ("cmake", "-- Configuring incomplete, errors occurred!"),
    ("cmake", "CMake Generate step failed.  Build files cannot be regenerated correctly."),
    ("scons", "scons: building terminated because of errors."),
    ("scons", "scons: *** [build/x.o] Error 1"),
    ("configure", "configure: error: C compiler cannot create executables"),
    ("configure", "Project ERROR: Unknown module(s) in QT: webengine"),
    ("bazel", "ERROR: /build/source/BUILD.bazel:12:3: Compiling src/x.cc failed: (Exit 1)"),
    ("zig", "error: the following build command failed with exit code 1:"),
    ("meson", "meson.build:95:17: ERROR: Dependency \"gtk4\" not found, tried pkgconfig"),
    ("meson", "ERROR: Dependency \"libdrm\" not found, tried pkgconfig"),
    ("pip", "ERROR: Could not find a version that satisfies the requirement hatchling"),
    ("pip", "ERROR Backend subprocess exited when trying to invoke build_wheel"),
    ("pip", "ERROR: No matching distribution found for setuptools>=61"),
    ("pip", "error: metadata-generation-failed"),
    ("hook", "ERROR: Missing Cargo.lock from src. Expected to find it at: /build/Cargo.lock"),
    ("hook", "ERROR: npmDepsHash is out of date"),
    ("hook", "substituteStream() in derivation x-1.0: ERROR: pattern foo doesn't match anything"),
    ("packages", "ERROR: dependency 'Rcpp' is not available for package 'foo'"),
    ("packages", "ERROR: Failed to build gem native extension."),
    ("packages", "An error occurred while installing nokogiri (1.15.4), and Bundler cannot "
                 "continue."),
    ("packages", "go: inconsistent vendoring in /build/source:"),
    ("ninja", "FAILED: src/libfoo.so.p/foo.c.o"),
    ("ninja", "ninja: build stopped: subcommand failed."),
    ("gradle", "BUILD FAILED in 12s"),
    ("gradle", "* What went wrong:"),
    ("gradle", "    1 Error(s)"),
    ("gradle", "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin"),
    ("cabal", "Error: cabal: Failed to build hello-0.1.0.0."),
    ("cabal", "Error: [Cabal-7125]"),
    ("cabal", "Setup: Encountered missing dependencies:"),
    ("pytest", "=========== 2 failed, 130 passed, 3 skipped in 12.34s ==========="),
    ("pytest", "FAILED tests/test_api.py::test_login - AssertionError: assert 401 == 200"),
    ("pytest", "Interrupted: 1 error during collection"),
    ("pytest", "!!!!!!!!!!!!!!!!!!! Interrupted: 7 errors during collection !!!!!!!!!!!!!!!!!!!"),
    ("unittest", "FAILED (failures=1)"),
    ("go", "--- FAIL: TestParse (0.00s)"),
    ("go", "FAIL\tgithub.com/foo/bar\t0.123s"),
    ("ctest", "The following tests FAILED:"),
    ("ctest", "95% tests passed, 1 tests failed out of 20"),
    ("jest", "Tests:       1 failed, 41 passed, 42 total"),
    ("harness", "FAIL: tests/test-utf8.sh"),
    ("harness", "# FAIL:  2"),
    ("harness", "3 examples, 1 failure"),
    ("harness", "81/183 nix-functional-tests:main / why-depends   FAIL   0.52s   exit status 1"),
    ("harness", "t/redirect.t                 (Wstat: 512 Tests: 4 Failed: 2)"),
    ("harness", "Failed 1/12 test programs. 2/150 subtests failed."),
    ("npm", "npm ERR! code ELIFECYCLE"),
    ("npm", "npm error code 1"),
    ("npm", "error Couldn't find any versions for \"left-pad\" that matches \"^9.0.0\""),
    ("npm", " ERR_PNPM_FETCH_404  GET https://registry.npmjs.org/x: Not Found - 404"),
    ("distutils", "error: command '/nix/store/aaaa-gcc-13/bin/gcc' failed with exit code 1"),
    # (any program's death: a builder's in a builder's output, stdenv's phase line above)
    ("exception", "Exception in thread \"main\" java.lang.NoClassDefFoundError: org/foo/Bar"),
    ("exception", "** (CompileError) lib/app.ex:3: undefined function foo/0"),
    ("exception", "Error: Cannot find module 'react'"),
    ("exception", "exit status 1"),
    ("exception", "thread 'main' panicked at /build/source/vendor/cmake/src/lib.rs:1098:5:"),
    ("stdenv", "do not know how to unpack source archive /nix/store/aaaa-src.tar.zst"),
    ("stdenv", "Hunk #1 FAILED at 12."),
    ("stdenv", "/nix/store/7crry947d1xvp1f15c6q089l0gcy5hpc-stdenv-linux/setup: line 1315: 3888 "
               "Killed ./Setup build"),
    ("stdenv", "1 out of 1 hunk FAILED -- saving rejects to file src/main.c.rej"),
    ("stdenv", "auto-patchelf: 2 dependencies could not be satisfied"),
]
# the verdicts of several lines: a Python traceback ending in its exception, OCaml's error
# under its position line
TRACEBACK = ["Traceback (most recent call last):",
             '  File "/build/source/setup.py", line 3, in <module>',
             "    import numpy",
             "ModuleNotFoundError: No module named 'numpy'"]
OCAML = ['File "bin/main.ml", line 3, characters 2-5:', "3 |   foo ()", "      ^^^",
         "Error: Unbound value foo"]


def _wrapped(lines: list[str]) -> dict[str, list[str]]:
    """The builder's lines as a copy may hold them, no line of Nix's in any."""
    return {
        "fenced": ["Building it fails:", "", "```", *lines, "```"],
        "quoted": ["Building it fails:", "", *(f"> {line}" for line in lines)],
        "indented": ["Building it fails:", "", *(f"    {line}" for line in lines)],
        "-L": ["hello> Running phase: buildPhase", *(f"hello> {line}" for line in lines)],
        "bare": list(lines),
    }


def test_every_verdict_of_the_table_has_an_example() -> None:
    assert {name for name, _ in diagnose.BUILDERS_VERDICTS} == {name for name, _ in VERDICTS}


@pytest.mark.parametrize(("name", "lines"), [
    *((name, ["Running phase: buildPhase", line] if name in diagnose._IN_A_BUILDER else [line])
      for name, line in VERDICTS), ("python", TRACEBACK), ("ocaml", OCAML)])
def test_a_builders_verdict_in_any_wrapping_is_a_failed_build(name: str, lines: list[str]) -> None:
    for wrapping, log in _wrapped(lines).items():
        [found] = diagnose.parse_log(log)
        assert (found.type, found.kind, found.drv) == (
            FailureType.BUILD, Kind.BUILDER, None), (wrapping, found)
        # (a hook's line naming the build directory read so before, as the line itself)
        assert f"{name}'s verdict" in found.message or found.message == lines[-1], found
        assert lines[-1].split()[-1].strip("`") in (found.log or found.message), wrapping
        assert found.log_line == len(log) - (wrapping == "fenced"), wrapping


def test_a_verdict_behind_a_print_build_logs_name_names_the_derivation_the_log_names() -> None:
    drv = "/nix/store/" + "a" * 32 + "-hello-2.12.drv"
    other = "/nix/store/" + "b" * 32 + "-zlib-1.3.drv"
    log = [f"building '{other}'...", f"building '{drv}'...", "zlib> installing",
           "hello> x.c:3:10: error: foo", "hello> make: *** [Makefile:2: x.o] Error 1"]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.drv, found.log_line) == (FailureType.BUILD, drv, 4)


@pytest.mark.parametrize("over", [
    ["I get this error:"],  # a writer's line that only says something failed
    ["I get this error: (see below)", ""], ["# Build error: hello fails on aarch64", ""],
    ["# Build fails on aarch64", ""],  # an issue's title
    ["✖ Command `nix build` failed"],  # a wrapper's verdict, after the builder's lines
])
def test_a_writers_or_wrappers_line_about_a_failure_yields_to_the_builders_verdict(
        over: list[str]) -> None:
    block = ["```", "src/main.rs:3:5: error: x", "make: *** [Makefile:3: all] Error 2", "```"]
    log = [*block, *over] if over[0].startswith("✖") else [*over, *block]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)
    assert "src/main.rs:3:5: error: x" in found.message


@pytest.mark.parametrize("died", [
    [*TRACEBACK[:2], "RuntimeError: error: store path 'x-.platformio' starts with illegal …"],
    *([line] for name, line in VERDICTS if name in diagnose._IN_A_BUILDER)])
def test_a_program_dying_outside_a_builders_output_is_no_failed_build(died: list[str]) -> None:
    # a tool the user ran died (nix-heuristic-gc's traceback relaying Nix's error, heldout-87):
    # no builder's output by its wrapping (-L, Nix's quote) or its words (/build/, a phase)
    lines = [line.replace("/build/source/", "/nix/store/aaaa-tool/lib/") for line in died]
    for log in (lines, ["```", *lines, "```"], [f"> {line}" for line in lines]):
        assert all(d.type is not FailureType.BUILD for d in diagnose.parse_log(log)), log


@pytest.mark.parametrize("wrap", [lambda lines: ["```", *lines, "```"], lambda lines: lines])
def test_an_error_line_of_a_block_holding_a_builders_verdict_is_that_builds(
        wrap: Callable[[list[str]], list[str]]) -> None:
    # an "error:" line nothing finer fits above the verdict in the same block (the builder's:
    # a line of Nix's would be read by its own words), no line of Nix's anywhere
    # (an unindented line right after an "error:" line the normaliser joins to it, as it joins
    # Nix's error lines a hard wrap broke: a verdict there is not read, a left limit)
    log = ["The build stops with:", "", *wrap(["sphinx-build: error: failed to build the docs",
                                             "  in doc/index.rst",
                                             "make: *** [Makefile:12: all] Error 2"])]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER)
    assert "make's verdict" in found.message


@pytest.mark.parametrize("nixs", [
    "error: program 'git' failed with exit code 128",  # (heldout-32 ryan4yin-9: other/nix)
    "error: cannot find flake 'flake:nixpkgs' in the flake registries",  # (other/error)
])
def test_a_makefile_running_nix_is_no_builders_verdict_over_nixs_own_error(nixs: str) -> None:
    # `make switch` running nixos-rebuild: make's verdict under Nix's own error line
    log = ["> nixos-rebuild switch --flake .#host", f"> {nixs}",
           "> (use '--show-trace' to show detailed location information)",
           "> make: *** [Makefile:14: switch] Error 1"]
    assert all(d.type is not FailureType.BUILD for d in diagnose.parse_log(log))


@pytest.mark.parametrize("ran", ["$ nixos-rebuild switch --flake .#host", "nix build .#foo",
                                 "sudo darwin-rebuild switch --flake ."])
def test_make_running_a_command_of_nixs_is_no_builders_verdict(ran: str) -> None:
    # `make switch`: make's verdict on the Nix command its recipe ran, Nix's lines without an
    # error (a copy kept none): no build's own output, no failed build
    log = [ran, "building the system configuration...", "make: *** [Makefile:14: switch] Error 1"]
    for wrapped in (log, ["```", *log, "```"], [f"> {line}" for line in log]):
        assert all(d.type is not FailureType.BUILD for d in diagnose.parse_log(wrapped)), wrapped



@pytest.mark.parametrize("last", [
    "mv: cannot stat 'main': No such file or directory",  # (heldout-390 llama-cpp-pr-380's line)
    "cp: error: missing destination file operand after 'docs'",
    "Error: Could not find the Android SDK",
    "sh: line 3: autoreconf: command not found",
    "the code generator failed with exit code 2",
    "ln: failed to create symbolic link './spotify': File exists",
])
def test_stdenvs_phases_then_the_builders_last_words_of_a_failure_are_a_failed_build(
        last: str) -> None:
    # no verdict of the table: stdenv's phase line, then the builder's last words say a step
    # failed, nothing after them (the copy ends where the build did, Nix's report cut off)
    for log in ([f"hello> {line}" for line in ("Running phase: buildPhase", last)],
                ["```", "Running phase: installPhase", last, "```"]):
        [found] = diagnose.parse_log(log)
        assert (found.type, found.kind) == (FailureType.BUILD, Kind.BUILDER), log
        assert "stdenv's verdict" in found.message


def test_a_verdict_without_a_name_is_the_one_build_the_log_started() -> None:
    # nix-build prints a builder's output without `-L`'s name: the one build the log started
    drv = "/nix/store/" + "a" * 32 + "-hello-2.12.drv"
    other = "/nix/store/" + "b" * 32 + "-zlib-1.3.drv"
    lines = ["x.c:3:10: error: foo", "make: *** [Makefile:2: x.o] Error 1"]
    [found] = diagnose.parse_log([f"building '{drv}'...", *lines])
    assert (found.type, found.drv) == (FailureType.BUILD, drv)
    [found] = diagnose.parse_log([f"building '{other}'...", f"building '{drv}'...", *lines])
    assert (found.type, found.drv) == (FailureType.BUILD, None)


def test_a_fence_of_nixs_quote_ending_in_a_failure_is_a_failed_build() -> None:
    # heldout-390 llama-cpp-pr-380: a fence holding one builder line behind Nix's quote mark, its
    # indentation and header lost (the 23:05 headerless-tail convention: build, no drv)
    log = ["I get the following error:", "", "```",
           "> mv: cannot stat 'main': No such file or directory", "```", "",
           "It seems the binaries are now `bin/main`?"]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.drv, found.log_line) == (FailureType.BUILD, None, 4)
    # a fence of such lines whose last says no failure, or a writer's quote outside a fence
    assert diagnose.parse_log(["```", "> building", "> installing", "```"]) == []
    quoted = diagnose.parse_log(["> mv: cannot stat 'main': No such file or directory"])
    assert all(d.type is not FailureType.BUILD for d in quoted)


def test_a_progress_bar_showing_a_builders_last_words_of_a_failure_is_a_failed_build() -> None:
    # heldout-184 bun2nix-67: the whole log a copy kept is Nix's bar showing the build's last line
    bar = ("[1/0/1 built] building PACKAGE-VERSION (bunNodeModulesInstallPhase): error: "
           "InstallFailed extracting tarball from @effect/workflow")
    [found] = diagnose.parse_log(["**Error Log**:", "```console", bar, "```"])
    assert (found.type, found.drv) == (FailureType.BUILD, None)
    assert found.message.endswith("stdenv's verdict: error: InstallFailed extracting tarball "
                                  "from @effect/workflow)")
    # the bar moving on, or showing a builder's ordinary line, is no failure
    for lines in ([bar, "[2/0/1 built] building other-1.0 (installPhase): installing"],
                  ["[1/0/3 built] building hello-2.12 (checkPhase): test_error ... ok"]):
        assert all(d.type is not FailureType.BUILD for d in diagnose.parse_log(lines)), lines



@pytest.mark.parametrize("verdict", [
    # a wrapper's own verdict after the builder's lines says only that its command failed
    ["##[error]Process completed with exit code 1."],  # GitHub's
    ["Command '['nix', 'build', '.#nixosConfigurations.web.config.system.build.toplevel']' "
     "returned non-zero exit status 1."],  # nixos-rebuild-ng's
    ["Error:", "   0: Failed to build configuration", "   1: Command exited with status 1"],  # nh
])
def test_a_wrappers_verdict_after_a_builders_yields_to_it(verdict: list[str]) -> None:
    log = ["```", "Running phase: buildPhase", "FAILED tests/test_api.py::test_login - assert 0",
           "```", *verdict]
    [found] = diagnose.parse_log(log)
    assert (found.type, found.kind, found.log_line) == (FailureType.BUILD, Kind.BUILDER, 3)
