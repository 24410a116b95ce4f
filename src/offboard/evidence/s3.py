"""Evidence in an S3-compatible bucket: django-storages' S3 backend, told to have the store check
a SHA-256 of every part it receives, with sane timeouts and retries, and able to hand out an
object's streaming body (its own `open()` downloads the whole object to a temporary file first).

Selected by configuration only (OFFBOARD_STORAGE=s3, settings.py, docs/deploy.md "Storage").
Credentials come from boto3's standard chain (environment, shared files, instance role), never
from settings or the database.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

MiB = 1024 * 1024
LOOKUPS = 8  # concurrent HEADs when a pack export checks that every file it names is stored


class EvidenceS3Storage(S3Storage):
    """S3Storage with Offboard's defaults; options as in settings.STORAGES["default"]."""

    # What the store's client raises when the store fails (evidence.storage turns these into
    # StorageUnavailable): botocore's connection, timeout and credential errors, the store's
    # error replies, and boto3's managed-transfer failures.
    errors: tuple[type[BaseException], ...] = (BotoCoreError, ClientError, Boto3Error)

    def get_default_settings(self) -> dict[str, Any]:
        return {
            **super().get_default_settings(),
            # Never a second name for the same content: evidence.storage.put checks first.
            "file_overwrite": False,
            # The store verifies each PUT (or each part of a multipart upload) against the
            # SHA-256 the client sends with it, and keeps it (ChecksumSHA256).
            "object_parameters": {"ChecksumAlgorithm": "SHA256"},
            "connect_timeout": 5.0,
            "read_timeout": 60.0,
            "max_attempts": 3,
            # Uploads above the threshold go in parts of this size, a few at a time: an
            # upload holds a few parts in memory (measured: 4 parts with one at a time, 6 with
            # two), whatever the file's size.
            "multipart_threshold": 8 * MiB,
            "multipart_chunksize": 8 * MiB,
            "max_concurrency": 2,
        }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.client_config = Config(
            s3={"addressing_style": self.addressing_style or "auto"},
            signature_version=self.signature_version,
            proxies=self.proxies,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            # Only when an operation requires one: ours asks for SHA-256 explicitly.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.transfer_config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
            max_concurrency=self.max_concurrency,
            use_threads=self.max_concurrency > 1,
            preferred_transfer_client="classic",
        )
        # Parts read from the spooled file and not yet sent: this, times the part size, is
        # the upload's memory (s3transfer's default is 10).
        self.transfer_config.max_in_memory_upload_chunks = self.max_concurrency

    @property
    def client(self) -> Any:
        return self.connection.meta.client

    def key(self, name: str) -> str:
        """The object key of a storage name (under the configured prefix)."""
        return str(self._normalize_name(clean_name(name)))

    def open_stream(self, name: str) -> tuple[IO[bytes], int]:
        """The object's body as it comes off the network, and its size."""
        try:
            reply = self.client.get_object(Bucket=self.bucket_name, Key=self.key(name))
        except ClientError as err:
            if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"{name} is not in bucket {self.bucket_name}") from None
            raise
        return reply["Body"], int(reply["ContentLength"])

    def missing(self, names: Sequence[str]) -> list[str]:
        """Those of `names` not in the bucket, in order: one HEAD each, `LOOKUPS` at a time
        through this thread's client (boto3's clients are safe to share between threads; its
        connection pool holds 10). A reply other than found or not found raises."""
        client = self.client

        def absent(name: str) -> bool:
            try:
                client.head_object(Bucket=self.bucket_name, Key=self.key(name))
            except ClientError as err:
                if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                    return True
                raise
            return False

        with ThreadPoolExecutor(max_workers=LOOKUPS) as pool:
            return [name for name, gone in zip(names, pool.map(absent, names), strict=True) if gone]

    def check_ready(self) -> dict[str, Any]:
        """One request the bucket must answer (it exists, these credentials reach it), tried
        once: a readiness probe must answer within its own timeout."""
        probe = getattr(self._connections, "probe", None)
        if probe is None:
            probe = self._create_session().client(
                "s3",
                region_name=self.region_name,
                use_ssl=self.use_ssl,
                endpoint_url=self.endpoint_url,
                config=self.client_config.merge(Config(retries={"total_max_attempts": 1})),
                verify=self.verify,
            )
            self._connections.probe = probe
        probe.head_bucket(Bucket=self.bucket_name)
        return {"kind": "s3"}
