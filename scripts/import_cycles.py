#!/usr/bin/env python3
"""Checks the module graph of src/ (the library; the CLI binary is left out): no import cycle
between modules, and the GStreamer element does not depend on the synthetic-scene generator.
Reads every `crate::`, `super::` and `self::` path and `use ...::{...}` list. Exits 1 when
either rule is broken. Run from the repository root (scripts/test.sh does)."""
import re, os, sys
from collections import defaultdict
root='src'
files=[]
for d,_,fs in os.walk(root):
    if 'bin' in d: continue
    for f in fs:
        if f.endswith('.rs'): files.append(os.path.join(d,f))
def modpath(f):
    p=f[len(root)+1:-3].split('/')
    if p[-1] in ('mod','lib'): p=p[:-1]
    return p
mods={tuple(modpath(f)):f for f in files}
def resolve(cur, path):
    # path list like ['crate','a','b'] or ['super','x']
    if path[0]=='crate': base=[]; rest=path[1:]
    elif path[0]=='super':
        base=list(cur[:-1]); rest=path[1:]
        while rest and rest[0]=='super': base=base[:-1]; rest=rest[1:]
    elif path[0]=='self': base=list(cur); rest=path[1:]
    else: return None
    # longest prefix that is a module
    best=None
    for i in range(len(rest)+1):
        cand=tuple(base+rest[:i])
        if cand in mods: best=cand
    return best
edges=defaultdict(set)
for m,f in mods.items():
    src=open(f).read()
    # strip comments
    src=re.sub(r'//[^\n]*','',src)
    for mt in re.finditer(r'\b((?:crate|super|self)(?:::(?:super|\w+))+)',src):
        parts=mt.group(1).split('::')
        t=resolve(list(m),parts)
        if t and t!=m and not (len(t)<len(m) and m[:len(t)]==t):
            edges[m].add(t)
    # use super::{a, b}
    for mt in re.finditer(r'use\s+(crate|super)((?:::\w+)*)::\{([^}]*)\}',src):
        pre=[mt.group(1)]+[x for x in mt.group(2).split('::') if x]
        for item in mt.group(3).split(','):
            item=item.strip().split(' ')[0].split('::')
            if not item[0]: continue
            t=resolve(list(m),pre+item)
            if t and t!=m and not (len(t)<len(m) and m[:len(t)]==t): edges[m].add(t)
# find cycles via DFS
color={}; stack=[]; cycles=[]
def dfs(u):
    color[u]=1; stack.append(u)
    for v in edges[u]:
        if color.get(v)==1: cycles.append(stack[stack.index(v):]+[v])
        elif not color.get(v): dfs(v)
    stack.pop(); color[u]=2
for m in list(mods): 
    if not color.get(m): dfs(m)
print(len(mods),'modules', sum(len(v) for v in edges.values()),'edges')
for c in cycles: print('CYCLE', ' -> '.join('::'.join(x) or 'lib' for x in c))
bad=bool(cycles)
# does the plugin (element) depend on synth?
def reach(a):
    seen=set(); todo=[a]
    while todo:
        u=todo.pop()
        for v in edges[u]:
            if v not in seen: seen.add(v); todo.append(v)
    return seen
synth=any(x[:1]==('synth',) for x in set().union(*[reach(m) for m in mods if m[:1]==('element',)]))
print('element reaches synth:', synth)
sys.exit(1 if bad or synth else 0)
