"""The program the sandbox runs to test one candidate: it counts passing tests, so a candidate
gets a pass rate rather than pass/fail.

The harness reads a JSON job from stdin (`program`, `tests`, `cases`, `entry_point`, `nonce`),
runs the candidate with fresh globals, then the tests, each on its own:

- input/output `cases`: the program runs once per case with the input on stdin; its stdout
  (stripped) must equal the expected output;
- a test snippet: top-level `assert` statements are one test each; otherwise `test_*`
  functions are called one by one; otherwise a `check(candidate)` function (HumanEval/MBPP)
  has each statement of its body run as one test with `candidate` bound to `entry_point`;
  a snippet with none of these is one test (passes when it runs without an exception).

It prints `<nonce> passed planned` before the first test and after every one (flushed), so a
candidate that hangs later keeps the tests it passed and fails the rest. The candidate's own
output goes to a buffer, not stdout. This is for selecting among candidates, not a defence
against a program that reads its own harness: the sandbox is what contains it.
"""

from __future__ import annotations

import re

HARNESS = r"""
import ast, contextlib, io, json, sys
job = json.loads(sys.stdin.readline())
NONCE = job.pop("nonce")
program, tests = job["program"], job.get("tests") or ""
passed = planned = 0

def report():
    sys.__stdout__.write("%s %d %d\n" % (NONCE, passed, planned))
    sys.__stdout__.flush()

def run(code, env, stdin=""):
    sys.stdin = io.StringIO(stdin)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        exec(code, env)
    return out.getvalue()

def attempt(fn):
    global passed
    try:
        fn()
        passed += 1
    except BaseException:
        pass
    report()

try:
    compiled = compile(program, "candidate.py", "exec")
except BaseException:
    compiled = None

if job.get("cases"):
    planned = len(job["cases"])
    report()
    for stdin, expected in job["cases"]:
        def case(stdin=stdin, expected=expected):
            if compiled is None:
                raise SyntaxError
            got = run(compiled, {"__name__": "__main__"}, stdin)
            assert got.strip() == expected.strip()
        attempt(case)
else:
    env = {"__name__": "__candidate__"}
    loaded = True
    try:
        if compiled is None:
            raise SyntaxError
        run(compiled, env)
    except BaseException:
        loaded = False
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        tree = ast.parse("")
    asserts = [s for s in tree.body if isinstance(s, ast.Assert)]
    setup = [s for s in tree.body if not isinstance(s, ast.Assert)]
    units = []
    if asserts:
        units = [ast.Module([s], []) for s in asserts]
    try:
        run(compile(ast.Module(setup, []), "tests.py", "exec"), env)
    except BaseException:
        pass
    if not units:
        names = [s.name for s in setup if isinstance(s, ast.FunctionDef)]
        tests_fns = [n for n in names if n.startswith("test")]
        check = next((s for s in setup if isinstance(s, ast.FunctionDef) and s.name == "check"),
                     None)
        if tests_fns:
            units = [ast.parse("%s()" % n) for n in tests_fns]
        elif check is not None and job.get("entry_point"):
            env["candidate"] = env.get(job["entry_point"])
            units = [ast.Module([s], []) for s in check.body]
        else:
            units = [ast.Module(tree.body, [])]
    planned = len(units)
    report()
    for unit in units:
        code = compile(unit, "tests.py", "exec")
        def one(code=code):
            if not loaded:
                raise RuntimeError("candidate did not load")
            run(code, env)
        attempt(one)
"""

_LINE = re.compile(r"^(\S+) (\d+) (\d+)$", re.M)


def parse_report(stdout: str, nonce: str) -> tuple[int, int]:
    """(passed, total) from the harness's last report line; (0, 0) when it never reported."""
    last = (0, 0)
    for m in _LINE.finditer(stdout):
        if m.group(1) == nonce:
            last = (int(m.group(2)), int(m.group(3)))
    return last


__all__ = ["HARNESS", "parse_report"]
