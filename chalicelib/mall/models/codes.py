"""CDK code pools (G1): importing a code file into a goods' pool, the import report, the pool's counts."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from chalicelib.core.models import Model

ImportStatus = Literal["uploading", "importing", "done", "failed"]
ID = r"^[A-Za-z0-9_-]{1,64}$"
# Code files are uploaded to pools/{tenant}/{goods}/{import}.txt; infra sends this prefix's uploads to the job.
CODE_FILE_PREFIX = "pools/"
IMPORT_JOB = "import_codes"


class CodeImport(Model):
    """One import of one code file; the counters are exact for every line read so far.

    ``lines_read`` = blank + invalid + added + duplicates (in the file and already in the pool).
    """

    import_id: str
    tenant_id: str
    goods_id: str
    key: str
    status: ImportStatus
    file_name: str | None = None
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None
    lines_read: int = 0
    blank_lines: int = 0
    codes_added: int = 0
    duplicates_in_file: int = 0
    duplicates_in_pool: int = 0
    invalid_lines: int = 0
    invalid_line_numbers: list[int] = Field(default_factory=list)
    bytes_total: int | None = None
    bytes_read: int = 0
    error: str | None = None
    # the checkpoint: the next chunk to process, and where its first line starts in the file
    next_chunk: int = 0
    seq_base: int | None = None
    etag: str | None = None


class CreateCodeImport(Model):
    model_config = ConfigDict(extra="forbid", strict=True)

    file_name: str | None = Field(default=None, min_length=1, max_length=256, description="shown in the report only")


class CodeImportCreated(Model):
    import_id: str
    key: str
    upload_url: str = Field(description="presigned PUT; send the header Content-Type: text/plain")
    method: str = "PUT"
    headers: dict[str, str]
    status: ImportStatus
    start_path: str = Field(description="POST it after the upload (S3 also starts the import on its own in the cloud)")


class CodeImportOut(Model):
    import_id: str
    goods_id: str
    status: ImportStatus
    key: str
    file_name: str | None
    created_by: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    lines_read: int
    blank_lines: int
    codes_added: int
    duplicates_in_file: int
    duplicates_in_pool: int
    invalid_lines: int
    invalid_line_numbers: list[int] = Field(description="the first few invalid lines (1-based)")
    bytes_total: int | None
    bytes_read: int
    percent: int = Field(ge=0, le=100)
    error: str | None

    @classmethod
    def from_domain(cls, record: CodeImport) -> CodeImportOut:
        if record.status == "done":
            percent = 100
        elif record.bytes_total:
            percent = min(99, record.bytes_read * 100 // record.bytes_total)
        else:
            percent = 0
        return cls(**record.model_dump(include=set(cls.model_fields) - {"percent"}), percent=percent)


class CodePoolSummary(Model):
    goods_id: str
    total: int = Field(description="codes imported")
    issued: int = Field(description="codes given to members")
    free: int = Field(description="codes left to issue")


class ImportTarget(Model):
    """What the import job runs: from an S3 event's key, or sent directly (resume, local runs)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=ID)
    goods_id: str = Field(pattern=ID)
    import_id: str = Field(pattern=ID)
    # seconds already spent waiting for another import of the same goods (continuations carry it)
    waited_seconds: int = Field(default=0, ge=0)
