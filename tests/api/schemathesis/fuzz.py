"""Fuzzes a running rampart-dashboard from its own OpenAPI document with schemathesis (run by
run.sh, which installs schemathesis and passes its path): starts a seeded dashboard
(seeded.py), writes a schemathesis config whose dictionaries hold the seeded ids (so generated
requests reach real projects, tests, runs... most of the time, and random ids the rest), and
runs two passes over every documented operation:
  1. as a project-scoped editor API key (made just before), without the stateful phase (it
     would follow links from lists to DELETEs of the seeded ids the second pass needs);
  2. as the admin, with a session cookie and its CSRF token (owner everywhere), without
     DELETE /api/v1/session (it would end the session the pass runs with).
Checks: not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance. Prints how many cases ran, the
status codes each operation answered, and every failure (route, check, message, a curl to
reproduce it); exits 1 on any failure, error or a dashboard that did not exit 0 afterwards.
Reports (JSON, NDJSON, JUnit) go to BUILD/test-logs/schemathesis/."""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time

import requests

from seeded import Seeded, make_api_key

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")

# path parameter name -> the kind of seeded id it takes (a name not listed gets random values)
ID_FOR = {
    "project": "project", "test": "test", "run": "run", "user": "user", "key": "key",
    "api_key": "key", "environment": "environment", "env": "environment",
    "schedule": "schedule", "channel": "channel", "rule": "rule", "alert_rule": "rule",
    "window": "window", "version": "version", "incident": "incident",
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def path_params(doc, item, op):
    out = []
    for prm in list(item.get("parameters", [])) + list(op.get("parameters", [])):
        ref = prm.get("$ref")
        if ref:
            prm = doc["components"]["parameters"][ref.rsplit("/", 1)[1]]
        if prm.get("in") == "path":
            out.append(prm["name"])
    return out


def write_config(path, doc, ids):
    """The schemathesis config: a dictionary of seeded ids per kind, bound to the path
    parameters that name it (90 % of the cases use a real id, the rest random ones). A DELETE
    takes its last path parameter (the thing deleted) from the victims of that kind, so the
    ids every other operation uses stay alive; adding a member tries existing e-mails."""
    dicts, bound, unbound = {}, {}, []

    def kind_of(name):
        k = ID_FOR.get(name) or ID_FOR.get(name.removesuffix("_id"))
        return k if k and k in ids else None

    def binding(kind):
        dicts[kind] = ids[kind] if isinstance(ids[kind], list) else [ids[kind]]
        return f'{{ dictionary = "{kind}", probability = 0.9 }}'

    ops = []
    for p, item in doc.get("paths", {}).items():
        for m, op in item.items():
            if m not in METHODS:
                continue
            names = path_params(doc, item, op)
            for n in names:
                if kind_of(n):
                    bound[n] = kind_of(n)
                elif n not in unbound:
                    unbound.append(n)
            over = {}
            if m == "delete" and names and kind_of(names[-1]) and \
                    "victim_" + kind_of(names[-1]) in ids:
                over = {f"path.{n}": binding(kind_of(n)) for n in names[:-1] if kind_of(n)}
                over[f"path.{names[-1]}"] = binding("victim_" + kind_of(names[-1]))
            if m == "post" and p.endswith("/members"):
                over = {f"path.{n}": binding(kind_of(n)) for n in names if kind_of(n)}
                over["body.email"] = binding("email").replace("0.9", "0.7")
            if over:
                ops += ["[[operations]]", f"include-name = {toml_str(m.upper() + ' ' + p)}",
                        "parameters = { " + ", ".join(f"{toml_str(k)} = {v}"
                                                      for k, v in over.items()) + " }"]
                if m == "delete":
                    # ids seen in other answers (the seeded project in GET /projects...)
                    # must not be deleted either
                    off = "{ extra-data-sources = { responses = false } }"
                    ops.append(f"phases = {{ examples = {off}, coverage = {off}, "
                               f"fuzzing = {off} }}")
                ops.append("")
    glob = ["[parameters]"] + [f"{toml_str('path.' + n)} = {binding(k)}" for n, k in bound.items()]
    lines = []
    for kind, vals in sorted(dicts.items()):
        lines += [f"[dictionaries.{kind}]", "values = [" + ", ".join(map(toml_str, vals)) + "]",
                  ""]
    with open(path, "w") as f:
        f.write("\n".join(lines + glob + [""] + ops))
    return bound, unbound


def statuses(ndjson_path):
    """{operation: Counter(status code)} from schemathesis's NDJSON event stream."""
    out = collections.defaultdict(collections.Counter)
    with open(ndjson_path) as f:
        for line in f:
            ev = json.loads(line).get("ScenarioFinished")
            if not ev:
                continue
            rec = ev["recorder"]
            for inter in (rec.get("interactions") or {}).values():
                resp = inter.get("response") or {}
                label = rec["label"]
                if label == "Stateful tests":
                    req = inter.get("request") or {}
                    label = "stateful: " + req.get("method", "?")
                out[label][resp.get("status_code", "no answer")] += 1
    return out


def run_pass(st, name, url, config, headers, examples, workers, seed, outdir, extra):
    rep = os.path.join(outdir, name)
    shutil.rmtree(rep, ignore_errors=True)
    os.makedirs(rep)
    cmd = [st, "--config-file", config, "run", url + "/api/v1/openapi.json", "--checks", CHECKS,
           "--max-examples", str(examples), "--workers", str(workers),
           "--generation-with-security-parameters", "false", "--request-timeout", "30",
           "--report", "json,ndjson,junit", "--report-dir", rep, "--no-color",
           "--output-truncate", "false"]
    if seed:
        cmd += ["--seed", str(seed)]
    for h in headers:
        cmd += ["-H", h]
    cmd += extra
    print(f"\n==> pass {name}: schemathesis run ... --max-examples {examples} "
          f"--workers {workers} {' '.join(extra)}", flush=True)
    t0 = time.time()
    log = os.path.join(rep, "output.txt")
    env = dict(os.environ, SCHEMATHESIS_HOOKS=os.path.join(HERE, "hooks.py"))
    with open(log, "w") as f:
        # in the report directory: schemathesis and Hypothesis keep their state in the cwd
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=rep)
    took = time.time() - t0
    jsons = sorted(x for x in os.listdir(rep) if x.startswith("json-"))
    nd = sorted(x for x in os.listdir(rep) if x.startswith("ndjson-"))
    report = None
    if jsons:
        with open(os.path.join(rep, jsons[-1])) as f:
            report = json.load(f)
    if not report or not report.get("operations"):
        with open(log) as f:
            print(f.read()[-6000:])
        print(f"    schemathesis exited {code} without testing anything (see above)")
        return {"name": name, "ok": False, "cases": 0, "took": took}
    tc = report["test_cases"]
    ops = report["operations"]
    print(f"    {tc['generated']} cases over {ops['tested']} of {ops['total']} operations in "
          f"{took:.0f} s; {tc['with_failures']} with failures ({tc['unique_failures']} unique), "
          f"{tc['errored']} errored; schemathesis exit code {code}; seed {report['seed']}")
    by_op = statuses(os.path.join(rep, nd[-1])) if nd else {}
    for op in sorted(by_op):
        print(f"    {op}: " + ", ".join(f"{s} x{n}" for s, n in sorted(by_op[op].items(),
                                                                      key=lambda x: str(x[0]))))
    warn = {k: v for k, v in (report.get("warnings") or {}).items() if v}
    if warn:
        print(f"    warnings: {json.dumps(warn)}")
    ok = code == 0 and tc["with_failures"] == 0 and tc["errored"] == 0 and not report["errors"]
    if not ok:
        # the human-readable failure list (route, check, response, curl) is in the output
        with open(log) as f:
            text = f.read()
        start = text.find("FAILURES")
        start = text.find("ERRORS") if start < 0 else start
        print(text[start if start >= 0 else -8000:][:60000])
    return {"name": name, "ok": ok, "cases": tc["generated"], "report": report, "took": took}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemathesis", required=True)
    ap.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", 50)))
    ap.add_argument("--key-examples", type=int,
                    default=int(os.environ.get("FUZZ_KEY_EXAMPLES", 25)))
    ap.add_argument("--workers", type=int, default=int(os.environ.get("FUZZ_WORKERS", 2)))
    ap.add_argument("--seed", default=os.environ.get("FUZZ_SEED"))
    ap.add_argument("--passes", default=os.environ.get("FUZZ_PASSES", "api-key,session"))
    a = ap.parse_args()
    build = os.environ["RP_BUILD_DIR"]
    outdir = os.path.join(build, "test-logs", "schemathesis")
    os.makedirs(outdir, exist_ok=True)
    s = Seeded(runs=120, name="rampart_fuzz")
    results, code = [], None
    try:
        s.start()
        doc = requests.get(s.url + "/api/v1/openapi.json", timeout=10).json()
        n_ops = sum(1 for item in doc["paths"].values() for m in item if m in METHODS)
        config = os.path.join(outdir, "schemathesis.toml")
        bound, unbound = write_config(config, doc, dict(s.ids, version=1))
        print(f"dashboard {s.url} (log {s.d.log_path}); the document has {len(doc['paths'])} "
              f"paths, {n_ops} operations; seeded ids for path parameters "
              f"{', '.join(f'{k}={v}' for k, v in bound.items())}"
              + (f"; random values only for {', '.join(unbound)}" if unbound else ""))
        passes = {
            "session": ([f"Cookie: rampart_session={s.cookie}", f"X-CSRF-Token: {s.csrf}"],
                        a.examples, ["--exclude-operation-id", "logout"]),
            # no stateful phase (see above); the admin pass's comes last
            "api-key": (None, a.key_examples, ["--phases", "examples,coverage,fuzzing"]),
        }
        for name in a.passes.split(","):
            headers, n, extra = passes[name]
            if name == "api-key":
                # a fresh key: the admin pass may have revoked or deleted anything else
                _, token = make_api_key(s.d.sql, s.ids["project"], "fuzz editor " + name)
                headers = [f"Authorization: Bearer {token}"]
            results.append(run_pass(a.schemathesis, name, s.url, config, headers, n, a.workers,
                                    a.seed, outdir, extra))
            if s.d.proc.poll() is not None:
                print(f"the dashboard died during pass {name}: exit code {s.d.proc.returncode}")
                break
    finally:
        code = s.stop()
    total = sum(r["cases"] for r in results)
    per_pass = ", ".join(f"{r['name']}: {r['cases']}" for r in results)
    print(f"\nschemathesis: {total} cases in {len(results)} passes ({per_pass}); "
          f"dashboard exit code {code}; reports in {outdir}")
    good = results and all(r["ok"] for r in results) and code == 0
    print("schemathesis: PASSED" if good else "schemathesis: FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
