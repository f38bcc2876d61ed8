"""`mic clusters ...` against a fake MIC over real HTTP: requests sent, output, errors, exit codes."""

from __future__ import annotations

import base64
import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from fake_mic_api import TOKEN, FakeMic, Recorded, Run, cluster_json

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"


def kubeconfig_text(ca_ref: str = "ca.crt") -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Config
        current-context: eu
        contexts:
        - name: eu
          context: {{cluster: eu-cluster, user: eu-user}}
        - name: us
          context: {{cluster: us-cluster, user: us-user}}
        clusters:
        - name: eu-cluster
          cluster: {{server: "https://eu.example:6443", certificate-authority: {ca_ref}}}
        - name: us-cluster
          cluster: {{server: "https://us.example:6443", insecure-skip-tls-verify: true}}
        users:
        - name: eu-user
          user: {{tokenFile: eu.token}}
        - name: us-user
          user: {{token: us-secret-token}}
        """
    )


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    (tmp_path / "ca.crt").write_text(CA_PEM)
    (tmp_path / "eu.token").write_text("eu-secret-token\n")
    path = tmp_path / "config"
    path.write_text(kubeconfig_text())
    return path


def echo_created(request: Recorded) -> tuple[int, object]:
    return 201, cluster_json(request.body["name"], labels=request.body["labels"])


def test_add_sends_minified_flattened_kubeconfig_content_not_path(
    run: Run, fake_mic: FakeMic, kubeconfig: Path
) -> None:
    fake_mic.on("POST", "/v1/clusters", echo_created)

    result = run(
        "clusters", "add", "eu-1", "--kubeconfig", str(kubeconfig),
        "--label", "region=eu", "--label", "tier=prod", "--resource", "ingresses", "--resource", "services",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout == "cluster 'eu-1' added: connected (server v1.30.2), 7 objects cached\n"
    sent = fake_mic.only_request()
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body["name"] == "eu-1"
    assert sent.body["labels"] == {"region": "eu", "tier": "prod"}
    assert sent.body["resources"] == ["ingresses", "services"]
    connection = sent.body["connection"]
    assert connection["type"] == "kubeconfig"
    assert connection["context"] is None
    assert str(kubeconfig.parent) not in json.dumps(sent.body), "a client path reached the server"
    doc = yaml.safe_load(connection["kubeconfig"])
    assert [c["name"] for c in doc["contexts"]] == ["eu"]
    assert doc["current-context"] == "eu"
    assert [c["name"] for c in doc["clusters"]] == ["eu-cluster"]
    cluster = doc["clusters"][0]["cluster"]
    assert "certificate-authority" not in cluster
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == CA_PEM
    assert doc["users"] == [{"name": "eu-user", "user": {"token": "eu-secret-token"}}]
    assert "us-secret-token" not in connection["kubeconfig"], "another context's credentials were sent"


def test_add_with_named_context_keeps_only_that_context(
    run: Run, fake_mic: FakeMic, kubeconfig: Path
) -> None:
    fake_mic.on("POST", "/v1/clusters", echo_created)

    result = run("clusters", "add", "us-1", "--kubeconfig", str(kubeconfig), "--context", "us")

    assert result.exit_code == 0, result.output
    connection = fake_mic.only_request().body["connection"]
    assert connection["context"] == "us"
    doc = yaml.safe_load(connection["kubeconfig"])
    assert doc["current-context"] == "us"
    assert doc["users"] == [{"name": "us-user", "user": {"token": "us-secret-token"}}]
    assert "eu-secret-token" not in connection["kubeconfig"]


def test_add_reads_kubeconfig_from_stdin(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/clusters", echo_created)
    text = kubeconfig_text().replace("certificate-authority: ca.crt", "insecure-skip-tls-verify: true")

    result = run("clusters", "add", "us-1", "--kubeconfig", "-", "--context", "us", input=text)

    assert result.exit_code == 0, result.output
    assert "us.example" in fake_mic.only_request().body["connection"]["kubeconfig"]


def test_add_sends_a_kubeconfig_it_cannot_parse_unchanged_so_the_server_explains(
    run: Run, fake_mic: FakeMic, tmp_path: Path
) -> None:
    fake_mic.on(
        "POST",
        "/v1/clusters",
        (422, {"detail": "kubeconfig is not valid YAML: line 2, column 3: bad indentation"}),
    )
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\n  kind: [\n")

    result = run("clusters", "add", "eu-1", "--kubeconfig", str(bad))

    assert fake_mic.only_request().body["connection"]["kubeconfig"] == "apiVersion: v1\n  kind: [\n"
    assert result.exit_code == 1
    assert result.stderr == "error: kubeconfig is not valid YAML: line 2, column 3: bad indentation (422)\n"


def test_add_with_server_sends_token_and_ca_contents(run: Run, fake_mic: FakeMic, tmp_path: Path) -> None:
    fake_mic.on("POST", "/v1/clusters", echo_created)
    (tmp_path / "token").write_text("  cluster-bearer-token\n")
    (tmp_path / "ca.pem").write_text(CA_PEM)

    result = run(
        "clusters", "add", "eu-1", "--server", "https://eu.example:6443",
        "--token-file", str(tmp_path / "token"), "--ca-file", str(tmp_path / "ca.pem"),
        "--tls-server-name", "kubernetes.default", "-o", "json",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().body["connection"] == {
        "type": "token",
        "server": "https://eu.example:6443",
        "token": "cluster-bearer-token",
        "caData": CA_PEM,
        "insecureSkipTlsVerify": False,
        "tlsServerName": "kubernetes.default",
    }
    assert json.loads(result.stdout)["name"] == "eu-1"
    assert "cluster-bearer-token" not in result.output


def test_update_replaces_only_the_connection(run: Run, fake_mic: FakeMic, tmp_path: Path) -> None:
    """A rotated token: the stored labels and resources go back unchanged with the new connection."""
    stored = {"name": "eu-1", "labels": {"region": "eu"}, "resources": ["ingresses"], "connection": {}}
    fake_mic.on("GET", "/v1/clusters/eu-1", (200, stored))
    fake_mic.on(
        "PUT", "/v1/clusters/eu-1", lambda r: (200, {"name": "eu-1", "status": {"state": "connecting"}})
    )
    (tmp_path / "token").write_text("rotated-bearer-token\n")

    result = run(
        "clusters",
        "update",
        "eu-1",
        "--server",
        "https://eu.example:6443",
        "--token-file",
        str(tmp_path / "token"),
        "--no-wait",
    )

    assert (result.exit_code, result.stdout) == (0, "cluster 'eu-1' updated (state: connecting)\n"), (
        result.output
    )
    put = fake_mic.requests[-1]
    assert (put.method, put.path) == ("PUT", "/v1/clusters/eu-1")
    assert put.body == {
        "labels": {"region": "eu"},
        "resources": ["ingresses"],
        "connection": {
            "type": "token",
            "server": "https://eu.example:6443",
            "token": "rotated-bearer-token",
            "insecureSkipTlsVerify": False,
            "tlsServerName": None,
        },
    }
    assert "rotated-bearer-token" not in result.output
    missing = run("clusters", "update", "gone", "--in-cluster")
    assert (missing.exit_code, missing.stderr) == (1, "error: cluster 'gone' not found (404)\n")


def test_add_in_cluster(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("POST", "/v1/clusters", echo_created)

    result = run("clusters", "add", "home", "--in-cluster", "--insecure-skip-tls-verify")
    assert result.exit_code == 2
    assert result.stderr == "error: --insecure-skip-tls-verify only goes with --server, not --in-cluster\n"

    result = run("clusters", "add", "home", "--in-cluster")
    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().body["connection"] == {"type": "inCluster"}


def test_add_kubeconfig_on_server_sends_the_path_for_the_server_to_resolve(
    run: Run, fake_mic: FakeMic
) -> None:
    fake_mic.on("POST", "/v1/clusters", echo_created)

    result = run("clusters", "add", "eu-1", "--kubeconfig-on-server", "eu.yaml", "--context", "eu")

    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().body["connection"] == {
        "type": "kubeconfigFile",
        "path": "eu.yaml",
        "context": "eu",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kubeconfig", "k", "--server", "https://x"], "--kubeconfig and --server are mutually exclusive"),
        (["--server", "https://x", "--in-cluster"], "--server and --in-cluster are mutually exclusive"),
        ([], "say how to connect: --kubeconfig PATH, --server URL --token-file F, or --in-cluster"),
        (["--kubeconfig", "k", "--ca-file", "ca"], "--ca-file only goes with --server, not --kubeconfig"),
        (["--server", "https://x", "--context", "c"], "--context only goes with --kubeconfig or "
         "--kubeconfig-on-server, not --server"),
        (["--server", "https://x"], "--server needs --token-file (a file holding the cluster's bearer token; "
         "- for stdin)"),
        (["--in-cluster", "--label", "novalue"], "--label 'novalue' is not key=value"),
        (["--in-cluster", "--label", "a=1", "--label", "a=2"], "--label 'a' given twice"),
    ],
)  # fmt: skip
def test_add_usage_errors_are_one_line_with_exit_code_2_and_send_nothing(
    run: Run, fake_mic: FakeMic, args: list[str], message: str
) -> None:
    result = run("clusters", "add", "eu-1", *args)

    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""
    assert fake_mic.requests == []


def test_add_local_file_problems_are_one_line_with_exit_code_1(
    run: Run, fake_mic: FakeMic, tmp_path: Path, kubeconfig: Path
) -> None:
    missing = tmp_path / "nope"
    result = run("clusters", "add", "eu-1", "--kubeconfig", str(missing))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: cannot read --kubeconfig file '{missing}': no such file or directory\n",
    )

    result = run("clusters", "add", "eu-1", "--kubeconfig", str(kubeconfig), "--context", "asia")
    assert result.exit_code == 1
    assert (
        result.stderr == f"error: context 'asia' not found in kubeconfig '{kubeconfig}' (available: eu, us)\n"
    )

    (tmp_path / "ca.crt").unlink()
    result = run("clusters", "add", "eu-1", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: kubeconfig '{kubeconfig}': cannot read certificate-authority file 'ca.crt': "
        "no such file or directory\n"
    )

    (tmp_path / "empty").write_text("\n")
    result = run("clusters", "add", "eu-1", "--server", "https://x", "--token-file", str(tmp_path / "empty"))
    assert (result.exit_code, result.stderr) == (1, f"error: --token-file '{tmp_path / 'empty'}' is empty\n")

    (tmp_path / "t").write_text("tok")
    (tmp_path / "ca.der").write_bytes(b"0\x82\x01\xb3")
    result = run(
        "clusters", "add", "eu-1", "--server", "https://x", "--token-file", str(tmp_path / "t"),
        "--ca-file", str(tmp_path / "ca.der"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == f"error: --ca-file file '{tmp_path / 'ca.der'}' is not UTF-8 text\n"
    assert fake_mic.requests == []


@pytest.mark.parametrize(
    ("status", "body", "line"),
    [
        (409, {"detail": "cluster 'eu-1' already exists"}, "error: cluster 'eu-1' already exists (409)"),
        (
            422,
            {
                "detail": [
                    {"type": "missing", "loc": ["body", "connection", "kubeconfig"], "msg": "Field required"},
                    {
                        "type": "string_pattern_mismatch",
                        "loc": ["body", "name"],
                        "msg": "String should\nmatch",
                    },
                ]
            },
            "error: body.connection.kubeconfig: Field required; body.name: String should match (422)",
        ),
        (
            422,
            {"detail": "kubeconfig uses an exec plugin; start MIC with --allow-kubeconfig-exec to allow it"},
            "error: kubeconfig uses an exec plugin; start MIC with --allow-kubeconfig-exec to allow it (422)",
        ),
        (401, {"detail": "Not authenticated"}, "error: Not authenticated (401); check MIC_TOKEN / --token"),
        (
            403,
            {"detail": "admin role required"},
            "error: admin role required (403); this needs an admin token",
        ),
        (500, b"Internal Server Error\n\n", "error: Internal Server Error (500)"),
        (502, None, "error: Bad Gateway (502)"),
        (400, {"detail": f"bad header Bearer {TOKEN}"}, "error: bad header Bearer *** (400)"),
    ],
)
def test_add_api_errors_become_one_line(
    run: Run, fake_mic: FakeMic, status: int, body: object, line: str
) -> None:
    fake_mic.on("POST", "/v1/clusters", (status, body))

    result = run("clusters", "add", "eu-1", "--in-cluster")

    assert result.exit_code == 1
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_missing_token_gets_a_hint(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/clusters", (401, {"detail": "Not authenticated"}))

    result = run("clusters", "list", env={"MIC_TOKEN": ""})

    assert "authorization" not in fake_mic.only_request().headers
    assert result.stderr == "error: Not authenticated (401); set MIC_TOKEN or pass --token\n"


def test_url_and_token_options_override_the_environment(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/clusters", (200, {"items": []}))

    result = run(
        "clusters",
        "list",
        "--url",
        fake_mic.url + "/",
        "--token",
        "other",
        env={"MIC_URL": "http://x.invalid"},
    )

    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().headers["authorization"] == "Bearer other"
    assert result.stderr == "No clusters registered\n"


def test_unreachable_mic_is_one_line(run: Run, fake_mic: FakeMic) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        result = run("clusters", "list", "--url", f"http://127.0.0.1:{port}")

    assert result.exit_code == 1
    assert result.stderr == f"error: cannot reach MIC at http://127.0.0.1:{port}: connection refused\n"


def test_url_without_scheme_is_a_usage_error(run: Run) -> None:
    result = run("clusters", "list", "--url", "localhost:8000")

    assert result.exit_code == 2
    assert result.stderr == "error: invalid MIC URL 'localhost:8000': use http:// or https://\n"


def test_list_table(run: Run, fake_mic: FakeMic) -> None:
    broken = cluster_json(
        "us-1",
        labels={},
        status={"state": "unreachable", "reason": "ConnectionRefused",
                "lastError": "[Errno 111] Connect call failed", "serverVersion": None,
                "lastEventTime": None, "resources": []},
    )  # fmt: skip
    fake_mic.on("GET", "/v1/clusters", (200, {"items": [broken, cluster_json("eu-1")]}))

    result = run("clusters", "list")

    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == [
        "NAME",
        "STATE",
        "REASON",
        "SERVER",
        "VERSION",
        "LABELS",
        "RESOURCES",
        "OBJECTS",
        "LAST",
        "ERROR",
    ]
    assert lines[1] == [
        "eu-1",
        "ready",
        "Connected",
        "v1.30.2",
        "region=eu,tier=prod",
        "ingresses,services",
        "7",
    ]
    assert lines[2] == [
        "us-1",
        "unreachable",
        "ConnectionRefused",
        "ingresses,services",
        "0",
        "[Errno",
        "111]",
        "Connect",
        "call",
        "failed",
    ]


def test_tables_piped_elsewhere_neither_wrap_nor_pad(run: Run, fake_mic: FakeMic) -> None:
    long_error = "cannot reach https://10.0.0.1:6443: " + "very " * 60 + "long"
    cluster = cluster_json("eu-1", status={"state": "unreachable", "lastError": long_error})
    fake_mic.on("GET", "/v1/clusters", (200, {"items": [cluster]}))

    result = run("clusters", "list")

    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].endswith(long_error)
    assert all(line == line.rstrip() for line in lines)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_list_machine_output_is_the_api_answer(run: Run, fake_mic: FakeMic, fmt: str) -> None:
    answer = {"items": [cluster_json("eu-1")]}
    fake_mic.on("GET", "/v1/clusters", (200, answer))

    result = run("clusters", "list", "-o", fmt)

    assert result.exit_code == 0, result.output
    assert (json.loads if fmt == "json" else yaml.safe_load)(result.stdout) == answer


def test_get_shows_details_and_watched_resources(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/clusters/eu-1", (200, cluster_json("eu-1")))

    result = run("clusters", "get", "eu-1")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert ["Name:", "eu-1"] in [line.split() for line in out.splitlines()]
    assert "kubeconfig server=https://10.0.0.1:6443 context=eu" in out
    assert re.search(r"Created: +2024-05-01T10:00:00Z \(\d+[dy] ago\)", out)
    rows = [line.split() for line in out.splitlines()]
    assert ["ingresses", "*", "watching", "yes", "3", "1200"] in rows

    result = run("clusters", "get", "eu-1", "-o", "json")
    assert json.loads(result.stdout) == cluster_json("eu-1")


def test_get_shows_the_reasons_of_the_cluster_and_of_a_failing_resource(run: Run, fake_mic: FakeMic) -> None:
    cluster = cluster_json("eu-1")
    cluster["status"].update(state="degraded", reason="ResourceForbidden", lastError="secrets is forbidden")
    cluster["status"]["resources"][1].update(state="forbidden", reason="ResourceForbidden", synced=False)
    fake_mic.on("GET", "/v1/clusters/eu-1", (200, cluster))

    result = run("clusters", "get", "eu-1")

    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["State:", "degraded"] in rows
    assert ["Reason:", "ResourceForbidden"] in rows
    assert rows[-3][:6] == ["RESOURCE", "NAMESPACES", "SELECTOR", "STATE", "REASON", "SYNCED"]
    assert ["services", "*", "forbidden", "ResourceForbidden", "no", "4", "1201"] in rows


def test_get_unknown_cluster(run: Run, fake_mic: FakeMic) -> None:
    result = run("clusters", "get", "x")
    assert (result.exit_code, result.stderr) == (1, "error: cluster 'x' not found (404)\n")

    fake_mic.on("GET", "/v1/clusters/y", (404, {"detail": "no cluster named 'y'"}))
    result = run("clusters", "get", "y")
    assert (result.exit_code, result.stderr) == (1, "error: no cluster named 'y' (404)\n")


def test_remove(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("DELETE", "/v1/clusters/eu-1", (204, None))

    result = run("clusters", "remove", "eu-1")
    assert (result.exit_code, result.stdout) == (0, "cluster 'eu-1' removed\n")
    assert fake_mic.only_request().method == "DELETE"

    result = run("clusters", "remove", "eu-1", "-o", "json")
    assert json.loads(result.stdout) == {"name": "eu-1", "removed": True}

    result = run("clusters", "remove", "gone")
    assert (result.exit_code, result.stderr) == (1, "error: cluster 'gone' not found (404)\n")

    refusal = "cluster 'eu-1' cannot be deleted now: ... or with force=true to drop them"
    fake_mic.on(
        "DELETE", "/v1/clusters/eu-1", lambda r: (204, None) if r.query else (409, {"detail": refusal})
    )
    fake_mic.requests.clear()
    result = run("clusters", "remove", "eu-1")
    assert (result.exit_code, result.stderr) == (1, f"error: {refusal} (409)\n")
    fake_mic.requests.clear()
    assert run("clusters", "remove", "eu-1", "--force").exit_code == 0
    assert fake_mic.only_request().query == {"force": ["true"]}


def test_cluster_names_are_quoted_into_one_path_segment(run: Run, fake_mic: FakeMic) -> None:
    run("clusters", "get", "../v1/x?y")
    assert fake_mic.only_request().path == "/v1/clusters/..%2Fv1%2Fx%3Fy"


def test_help_never_shows_the_token(run: Run) -> None:
    for args in (
        ["clusters", "add", "--help"],
        ["resources", "get", "--help"],
        ["clusters", "list", "--help"],
    ):
        result = run(*args)
        assert result.exit_code == 0
        assert "MIC_TOKEN" in result.stdout  # the run fixture asserts the value itself is absent


def test_main_mounts_the_client_commands() -> None:
    from mic.cli.main import app

    names = {group.name for group in app.registered_groups}
    assert {"clusters", "resources"} <= names


def test_a_token_file_next_to_a_token_is_never_sent(run: Run, fake_mic: FakeMic, tmp_path: Path) -> None:
    """`token` beats `tokenFile` (as in client-go), and the file's path stays on this machine."""
    fake_mic.on("POST", "/v1/clusters", echo_created)
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "contexts: [{name: a, context: {cluster: a, user: a}}]\n"
        "clusters: [{name: a, cluster: {server: 'https://a.example'}}]\n"
        "users: [{name: a, user: {token: inline-token, tokenFile: /secret/place/token}}]\n"
    )

    result = run("clusters", "add", "a", "--kubeconfig", str(path))

    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(fake_mic.only_request().body["connection"]["kubeconfig"])
    assert doc["users"] == [{"name": "a", "user": {"token": "inline-token"}}]


def test_a_path_under_an_unknown_home_directory_is_one_line(
    run: Run, fake_mic: FakeMic, tmp_path: Path
) -> None:
    result = run("clusters", "add", "a", "--kubeconfig", "~nosuchuser-mic-test/config")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: cannot read --kubeconfig file '~nosuchuser-mic-test/config': its home directory is unknown\n",
    )

    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        "contexts: [{name: a, context: {cluster: a, user: a}}]\n"
        "clusters: [{name: a, cluster: {server: 'https://a.example'}}]\n"
        "users: [{name: a, user: {tokenFile: '~nosuchuser-mic-test/token'}}]\n"
    )
    result = run("clusters", "add", "a", "--kubeconfig", str(path))
    assert result.exit_code == 1
    assert "home directory is unknown" in result.stderr
    assert result.stderr.count("\n") == 1
    assert fake_mic.requests == []


@pytest.mark.parametrize(
    ("suffix", "where"),
    [("\x01", "U+0001"), ("\u00e9", "U+00E9"), ("a b", "a space")],
)
def test_a_token_that_cannot_be_sent_is_refused_without_printing_it(
    run: Run, fake_mic: FakeMic, suffix: str, where: str
) -> None:
    result = run("clusters", "list", env={"MIC_TOKEN": TOKEN + suffix})

    assert result.exit_code == 2
    assert where in result.stderr
    assert result.stderr.startswith("error: the API token (MIC_TOKEN / --token) has a character")
    assert fake_mic.requests == []


def test_a_token_with_a_trailing_line_break_is_sent_without_it(run: Run, fake_mic: FakeMic) -> None:
    fake_mic.on("GET", "/v1/clusters", (200, {"items": []}))

    result = run("clusters", "list", env={"MIC_TOKEN": TOKEN + "\r\n"})

    assert result.exit_code == 0, result.output
    assert fake_mic.only_request().headers["authorization"] == f"Bearer {TOKEN}"
