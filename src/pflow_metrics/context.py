"""Where a run happens: host, pid and the CI job, read from the usual CI variables."""

from __future__ import annotations

import os

# provider -> (variable that identifies it, job/run id, git sha, git branch)
_CI_PROVIDERS = (
    ("github-actions", "GITHUB_ACTIONS", "GITHUB_RUN_ID", "GITHUB_SHA", "GITHUB_REF_NAME"),
    ("gitlab-ci", "GITLAB_CI", "CI_JOB_ID", "CI_COMMIT_SHA", "CI_COMMIT_REF_NAME"),
    ("circleci", "CIRCLECI", "CIRCLE_BUILD_NUM", "CIRCLE_SHA1", "CIRCLE_BRANCH"),
    ("buildkite", "BUILDKITE", "BUILDKITE_BUILD_ID", "BUILDKITE_COMMIT", "BUILDKITE_BRANCH"),
    ("jenkins", "JENKINS_URL", "BUILD_ID", "GIT_COMMIT", "GIT_BRANCH"),
    ("azure-pipelines", "TF_BUILD", "BUILD_BUILDID", "BUILD_SOURCEVERSION", "BUILD_SOURCEBRANCHNAME"),
)


def ci_context(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The CI job this process runs in, or None outside CI."""
    env = os.environ if environ is None else environ
    for provider, marker, job, sha, branch in _CI_PROVIDERS:
        if env.get(marker):
            found = {"provider": provider, "job_id": env.get(job), "git_sha": env.get(sha),
                     "git_branch": env.get(branch)}
            return {key: value for key, value in found.items() if value}
    if env.get("CI", "").lower() in ("true", "1"):
        return {"provider": "generic"}
    return None


def host_name() -> str:
    import socket  # only runs that record need it; every command imports this module

    return socket.gethostname()
