"""Faults injected at the adapter boundary: inside botocore, between the client and the wire.

A `FaultPlan` hooks the `before-send` event of every client a `FaultyFactory` makes, so an
injected error is a real HTTP error response of the service's own protocol (rest-json for
Lambda, rest-xml for S3, query for SNS, JSON for SQS and DynamoDB): botocore parses it, its
retry policy (the project's: standard mode, 3 attempts) applies, and the adapters translate
it exactly as they would AWS's. A fault can also raise (a network error, or a Lambda timeout
that kills the invocation), or run a side effect and let the call through. Meant for moto's
server (with in-process moto, moto's own `before-send` hook would answer first).

No tests here.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.httpsession import URLLib3Session

from lambdas.adapters.clients import ClientFactory


class LambdaTimeout(BaseException):
    """The Lambda runtime stopping an invocation: nothing in the handler can catch it."""


@dataclass
class Fault:
    """What the next `times` calls of `operation` get (`times` 0: every call)."""

    operation: str
    code: str | None = None
    status: int = 400
    message: str = "injected fault"
    times: int = 1
    raises: BaseException | None = None
    side_effect: Callable[[], None] | None = None
    after_success: bool = False  # raise `raises` after the call went through
    lose_response: bool = False  # send the request, then raise ReadTimeoutError
    skip: int = 0  # calls let through before the fault starts
    match: str | None = None  # only calls whose URL or body contains this
    hits: int = 0

    def due(self) -> bool:
        return self.times == 0 or self.hits < self.times


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _error_response(protocol: str, fault: Fault, url: str) -> AWSResponse:
    code, message = fault.code or "InternalFailure", fault.message
    headers: dict[str, str] = {"x-amzn-RequestId": "injected"}
    if protocol in ("rest-json", "json"):
        headers |= {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    elif protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>".encode()
    else:  # query
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>injected</RequestId></ErrorResponse>"
        ).encode()
    return AWSResponse(url, fault.status, headers, _Body(body))


@dataclass
class FaultPlan:
    """Faults by operation name, and a count of the calls that reached the server."""

    faults: list[Fault] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation: str, **kwargs: Any) -> Fault:
        fault = Fault(operation, **kwargs)
        self.faults.append(fault)
        return fault

    def _take(self, operation: str, *, after: bool, text: str = "") -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.operation == operation
                    and fault.after_success == after
                    and fault.due()
                    and (fault.match is None or fault.match in text)
                ):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.hits += 1
                    self.injected[operation] += 1
                    return fault
            return None

    def attach(self, client: Any) -> Any:
        protocol = client.meta.service_model.protocol

        def before_send(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
            operation = event_name.rsplit(".", 1)[-1]
            body = request.body if isinstance(request.body, bytes) else b""
            text = f"{request.url} {body.decode(errors='replace')}"
            fault = self._take(operation, after=False, text=text)
            if fault is None:
                with self._lock:
                    self.sent[operation] += 1
                return None
            if fault.side_effect is not None:
                fault.side_effect()
                with self._lock:
                    self.sent[operation] += 1
                return None
            if fault.lose_response:
                URLLib3Session().send(request)
                with self._lock:
                    self.sent[operation] += 1
                raise ReadTimeoutError(endpoint_url=request.url)
            if fault.raises is not None:
                raise fault.raises
            return _error_response(protocol, fault, request.url)

        def after_call(http_response: Any, event_name: str, **_: Any) -> None:
            if http_response is not None and http_response.status_code < 300:
                fault = self._take(event_name.rsplit(".", 1)[-1], after=True)
                if fault is not None and fault.raises is not None:
                    raise fault.raises

        client.meta.events.register_first("before-send", before_send)
        client.meta.events.register("after-call", after_call)
        return client


class FaultyFactory(ClientFactory):
    """The project's ClientFactory, every client it makes under `plan`."""

    def __init__(self, plan: FaultPlan, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan

    def client(self, service: str, **kwargs: Any) -> Any:
        made = super().client(service, **kwargs)
        if not getattr(made, "_faulty", False):
            self.plan.attach(made)
            made._faulty = True
        return made
