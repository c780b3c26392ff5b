#!/usr/bin/env python3
"""Updates every package's PublicAPI.Unshipped.txt from the build's RS0016/RS0017 diagnostics (a fast stand-in for
`dotnet format analyzers --diagnostics RS0016 RS0017`): builds the solution, adds each undeclared public symbol to the
Unshipped file of the project it belongs to, removes declared symbols that no longer exist, and sorts the file.
Review the diff afterwards: every line is a promise to users. Usage: python3 tests/scripts/dev/update-public-api.py"""
import os, re, subprocess, sys

root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
out = subprocess.run(["dotnet", "build", os.path.join(root, "DeepAlign.Core.sln"), "-nologo", "-v:q", "-p:TreatWarningsAsErrors=false"],
                     capture_output=True, text=True).stdout
add, remove = {}, {}
pat = re.compile(r"^(?P<file>/[^(]+)\(\d+,\d+\): (?:error|warning) (?P<id>RS0016|RS0017|RS0025): Symbol '(?P<sym>.*?)' (?:is not part of|is part of|appears)", re.M)
for m in pat.finditer(out):
    path = m.group("file")
    proj = path
    while proj != root and not any(f.endswith(".csproj") for f in os.listdir(proj if os.path.isdir(proj) else os.path.dirname(proj))):
        proj = os.path.dirname(proj)
    proj = proj if os.path.isdir(proj) else os.path.dirname(proj)
    target = os.path.join(proj, "PublicAPI.Unshipped.txt")
    (add if m.group("id") == "RS0016" else remove).setdefault(target, set()).add(m.group("sym"))
for target in set(add) | set(remove):
    lines = open(target).read().split("\n") if os.path.exists(target) else []
    body = {l for l in lines if l and l != "#nullable enable"}
    body |= add.get(target, set())
    body -= remove.get(target, set())
    open(target, "w").write("#nullable enable\n" + "\n".join(sorted(body)) + "\n")
    print(f"{os.path.relpath(target, root)}: +{len(add.get(target, ()))} -{len(remove.get(target, ()))}")
if not add and not remove:
    print("public API lists are up to date")
