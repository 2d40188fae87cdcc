"""Response models of the platform API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Liveness(BaseModel):
    status: str = Field(examples=["ok"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    service: str = Field(examples=["bianjie"])
    version: str
    stage: str
    function: str | None = Field(description="the function that answered")
    functions: list[str] = Field(description="functions this deployment (or gateway) serves")


class PartnerMe(BaseModel):
    app_id: str = Field(examples=["demo-hospital"])
    key_serial: str = Field(description="serial of the key that signed this request", examples=["1"])
    name: str


class Jwk(BaseModel):
    kty: str = Field(examples=["EC"])
    crv: str = Field(examples=["SM2"], description='"SM2" for alg SM2-SM3, "P-256" for ES256')
    x: str
    y: str
    alg: str = Field(examples=["SM2-SM3"])
    use: str = Field(examples=["sig"])
    kid: str = Field(description="the key's thumbprint; a token's header names the key that signed it")


class Jwks(BaseModel):
    keys: list[Jwk]
