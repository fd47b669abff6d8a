"""A prepared run: the request, where the output goes, and the exchanges that carry it out."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import time
from dataclasses import dataclass
from typing import IO, Any

from ..exceptions import HyperError, HyperTimeout, InvalidHeader, InvalidURL
from .body import build_body, read_stdin, stdin_has_body
from .connections import Connections
from .download import OutputFile, content_range_start, download_name, unsatisfied_range_total
from .exchange import REDIRECT_STATUSES, Request, default_headers, next_request, offers_upgrade, wire_head
from .items import RequestSpec
from .output import REQUEST_BODY, REQUEST_HEAD, RESPONSE_BODY, RESPONSE_HEAD, Printer, binary_stdout
from .progress import Progress, size_text
from .status import USAGE_ERROR, ExitStatus, IncompleteDownload, TooManyRedirects, UsageError, exit_status_for
from .target import parse_target


def _isatty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def _is_regular_file(stream: IO[Any]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (ValueError, OSError, AttributeError):
        return False


@dataclass
class Transfer:
    """Everything a run needs, checked and opened before anything is sent."""

    args: argparse.Namespace
    request: Request
    connections: Connections
    printer: Printer
    #: ``--output``'s file (for ``--download`` without ``--output``: made when the response arrives).
    output: OutputFile | None
    #: The response body goes to a file (not a terminal): a progress bar may show on stderr.
    body_to_file: bool
    #: The first request went out (errors after it are not usage errors).
    _sent: bool = False
    #: A progress line is on stderr (a message after it starts a new line).
    _progress_shown: bool = False

    @classmethod
    def prepare(cls, args: argparse.Namespace, spec: RequestSpec) -> Transfer:
        """Check and open everything the command line names; raises :class:`UsageError`."""
        target = parse_target(spec.url, spec.query)
        body = build_body(spec, args.mode)
        if stdin_has_body(args.ignore_stdin):
            piped = read_stdin(sys.stdin.buffer)
            if piped is not None and body is not None:
                piped.close()
                body.close()
                raise UsageError(
                    "a body from stdin and one from the items (name=value, @file...) cannot be mixed; "
                    "use --ignore-stdin to leave stdin alone"
                )
            body = body or piped
        method = spec.explicit_method or ("POST" if body is not None else "GET")
        headers = default_headers(
            spec.headers,
            spec.unset_headers,
            target,
            body,
            json_accept=args.json_explicit,
            download=args.download,
        )
        output = None
        if args.output is not None:
            output = OutputFile(args.output, resume=args.resume, keep_partial=args.download)
            if output.initial_size and not any(name.lower() == "range" for name, _ in headers):
                headers.append(("range", f"bytes={output.initial_size}-"))
        request = Request(method, target, headers, body, spec.unset_headers)
        stdout_terminal = _isatty(sys.stdout)
        if args.download:
            # The body goes to its file; heads (response head by default) to stderr.
            parts = (args.print_parts or ("" if args.quiet else RESPONSE_HEAD)).replace(RESPONSE_BODY, "")
            printer = Printer(sys.stderr.buffer, parts, terminal=True)
            body_to_file = True
        elif output is not None:
            printer = Printer(output.handle, args.print_parts or RESPONSE_BODY, terminal=False)
            body_to_file = True
        else:
            default = RESPONSE_HEAD + RESPONSE_BODY if stdout_terminal else RESPONSE_BODY
            printer = Printer(binary_stdout(), args.print_parts or default, terminal=stdout_terminal)
            body_to_file = _is_regular_file(sys.stdout)
        connections = Connections(
            h2=args.h2,
            timeout=args.timeout,
            cacert=args.cacert,
            insecure=args.insecure,
            proxies=args.proxies,
        )
        return cls(args, request, connections, printer, output, body_to_file)

    # -- running -----------------------------------------------------------------------

    def run(self) -> int:
        """Send the request (and follow redirects); returns the exit status."""
        status: int = ExitStatus.ERROR
        try:
            status = self._exchanges()
            if self.output is not None:
                self.output.finish()
            self.printer.finish()
        except KeyboardInterrupt:
            self._fail("interrupted")
            return ExitStatus.ERROR_CTRL_C
        except TooManyRedirects as exc:
            self._fail(str(exc))
            return ExitStatus.ERROR_TOO_MANY_REDIRECTS
        except HyperTimeout as exc:
            self._fail(_describe(exc))
            return ExitStatus.ERROR_TIMEOUT
        except (InvalidURL, InvalidHeader) as exc:
            # Refused by hyper before the first request went out: the command line was at fault.
            self._fail(_describe(exc))
            return ExitStatus.ERROR if self._sent else USAGE_ERROR
        except _NothingDownloaded as exc:
            self._fail(str(exc))
            return exit_status_for(exc.status, follow=True) or ExitStatus.ERROR
        except UsageError as exc:  # a redirect to an invalid location: the server's fault
            self._fail(str(exc))
            return ExitStatus.ERROR
        except (HyperError, OSError, IncompleteDownload) as exc:
            if isinstance(exc, BrokenPipeError):
                self._abandon_output()
                return _broken_pipe()
            self._fail(_describe(exc))
            return ExitStatus.ERROR
        finally:
            self.connections.close()
            if self.request.body is not None:
                self.request.body.close()
        return status

    def _fail(self, message: str) -> None:
        """Report a failure in one line (after ending a progress line), and settle the output file."""
        note = self._abandon_output()
        if note:
            message += f"; {note}"
        start = "\n" if self._progress_shown else ""
        sys.stderr.write(f"{start}hyper: error: {message}\n")
        sys.stderr.flush()

    def _abandon_output(self) -> str:
        if self.output is None or self.output.handle.closed:
            return ""
        return self.output.abandon()

    def _exchanges(self) -> int:
        request = self.request
        redirects = 0
        while True:
            response = self._send(request)
            location = response.headers.get_first(b"location")
            follow = self.args.follow and response.status in REDIRECT_STATUSES and location is not None
            if not follow:
                return self._finish(request, response)
            if self.args.all:
                self._print_response(response)
            else:
                response.close()
            if redirects >= self.args.max_redirects:
                raise TooManyRedirects(f"too many redirects (--max-redirects={self.args.max_redirects})")
            request = next_request(request, response.status, location.decode("latin-1"))
            redirects += 1

    def _send(self, request: Request) -> Any:
        connection, new = self.connections.get(request.target)
        verbose = self.args.verbose
        if new:
            connection.connect()
            if verbose:
                _show_connection(connection, request.target.host, request.target.port, request.target.secure)
        upgrade = offers_upgrade(connection, request, negotiating=not self.args.h2)
        body = request.body
        if body is not None:
            body.rewind()
        stream_id = connection.request(
            request.method,
            request.target.path,
            body=None if body is None else body.data,
            headers=request.fields(),
        )
        self._sent = True
        head = wire_head(request, connection, upgrade_offered=upgrade)
        if verbose and upgrade:
            chosen = getattr(connection, "version", None) or "HTTP/1.1"
            sys.stderr.write(f"* h2c upgrade offered; {chosen} chosen\n")
        immediate = not self.args.follow or self.args.all
        if immediate:
            self._print_request(head, request)
        response = connection.getresponse(stream_id)
        if not immediate:
            location = response.headers.get_first(b"location")
            if not (response.status in REDIRECT_STATUSES and location is not None):
                self._print_request(head, request)
        return response

    def _print_request(self, head: Any, request: Request) -> None:
        if self.printer.wants(REQUEST_HEAD):
            self.printer.head(head.first_line, head.fields)
        if self.printer.wants(REQUEST_BODY) and request.body is not None:
            self.printer.request_body(request.body)

    def _print_response(self, response: Any) -> None:
        if self.printer.wants(RESPONSE_HEAD):
            self.printer.head(_status_line(response), response.headers.items())
        if self.printer.wants(RESPONSE_BODY):
            self.printer.body_chunks(response.read_chunked())
        else:
            response.close()

    def _finish(self, request: Request, response: Any) -> int:
        with response:
            if self.args.download:
                return self._download(request, response)
            if self.printer.wants(RESPONSE_HEAD):
                self.printer.head(_status_line(response), response.headers.items())
            if self.printer.wants(RESPONSE_BODY):
                progress = self._progress(response, 0)
                self.printer.body_chunks(response.read_chunked(), progress.update if progress else None)
                if progress is not None:
                    progress.finish()
            if self.printer.wants(RESPONSE_HEAD) and response.trailers:
                self.printer.head("", response.trailers.items())
        if not self.args.check_status:
            return ExitStatus.SUCCESS
        status = exit_status_for(response.status, self.args.follow)
        if status and not self.args.quiet and not _isatty(sys.stdout):
            # The status line may not be on the screen: say why the exit status is not 0.
            sys.stderr.write(f"hyper: warning: HTTP {response.status} {response.reason}\n")
        return status

    def _progress(self, response: Any, already: int) -> Progress | None:
        if not self.body_to_file or self.args.quiet or not _isatty(sys.stderr):
            return None
        self._progress_shown = True
        return Progress(sys.stderr, _expected_length(response, already), already)

    def _download(self, request: Request, response: Any) -> int:
        if self.printer.wants(RESPONSE_HEAD):
            self.printer.head(_status_line(response), response.headers.items())
        output = self.output
        resumed = output.initial_size if output is not None else 0
        if response.status == 416 and output is not None and resumed:
            total = unsatisfied_range_total(_header(response, b"content-range"))
            if total == resumed:
                _note(self.args, f"{output.path} is already complete ({size_text(total)})")
                return ExitStatus.SUCCESS
        if not 200 <= response.status < 300:
            raise _NothingDownloaded(response.status, response.reason)
        if output is None:
            name = download_name(
                request.target.url,
                _header(response, b"content-disposition"),
                _header(response, b"content-type"),
            )
            output = self.output = OutputFile.new_download(name)
        offset = 0
        if resumed and response.status == 206:
            start = content_range_start(_header(response, b"content-range"))
            if start is None or start[0] != resumed:
                raise IncompleteDownload(
                    f"the server answered the Range request with {_header(response, b'content-range')!r}, "
                    f"not from byte {resumed}"
                )
            offset = resumed
        elif resumed:
            _note(self.args, "the server ignored the Range request; downloading from the start")
            output.restart()
        expected = _expected_length(response, 0)
        what = size_text(expected) if expected is not None else "the body"
        _note(
            self.args, f'Downloading {what} to "{output.path}"' + (f" (from byte {offset})" if offset else "")
        )
        progress = self._progress(response, offset)
        started = time.monotonic()
        for chunk in response.read_chunked():
            output.write(chunk)
            if progress is not None:
                progress.update(len(chunk))
        if expected is not None and output.written != expected:
            raise IncompleteDownload(f"incomplete download: {output.written} of {expected} bytes arrived")
        if progress is not None:
            progress.finish()
        elapsed = time.monotonic() - started
        _note(self.args, f"Done. {size_text(output.written)} in {elapsed:.2f} s")
        return ExitStatus.SUCCESS


class _NothingDownloaded(HyperError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}: nothing downloaded")
        self.status = status


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _header(response: Any, name: bytes) -> str | None:
    value = response.headers.get_first(name)
    return None if value is None else value.decode("latin-1")


def _expected_length(response: Any, already: int) -> int | None:
    """The decoded length still to come, when the headers tell it (no content-encoding)."""
    if response.headers.get(b"content-encoding"):
        return None
    value = response.headers.get_first(b"content-length")
    return int(value) + already if value is not None and value.isdigit() else None


def _status_line(response: Any) -> str:
    version = getattr(response, "version", None) or "HTTP/2"
    return f"{version} {response.status} {response.reason}".rstrip()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no details)"
    return f"{type(exc).__name__}: {text}"


def _broken_pipe() -> int:
    # The reader of stdout went away (``hyper URL | head``). Point stdout at
    # /dev/null so the interpreter's final flush cannot fail a second time.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return ExitStatus.ERROR


def _show_connection(connection: Any, host: str, port: int, secure: bool) -> None:
    protocol = getattr(connection, "negotiated_protocol", None)
    version = getattr(connection, "version", None)
    if secure:
        if protocol:
            how = f"TLS, ALPN protocol {protocol}"
        else:
            how = f"TLS, no ALPN protocol ({'HTTP/2 forced' if version == 'HTTP/2' else version})"
    elif version is None:
        how = "cleartext, protocol chosen with the first request"
    elif version == "HTTP/2":
        how = "cleartext, HTTP/2 with prior knowledge"
    else:
        how = f"cleartext, {version}"
    proxy = getattr(connection, "proxy", None)
    via = f" via proxy {proxy.address}" if proxy is not None else ""
    literal = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"* connected to {literal}:{port}{via} ({how})\n")
    sys.stderr.flush()
