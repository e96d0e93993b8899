"""The words agreements and consents are written in: purposes and lawful bases.

They are declared here, beside the data categories, because the aggregates that
record agreements and consents validate against them and the domain may not
depend on ``consent/``; ``consent.vocabulary`` presents them to the policy.
"""

from __future__ import annotations

from enum import StrEnum


class Purpose(StrEnum):
    """Why a partner wants to see information. Every read states one."""

    DIRECT_CARE = "direct_care"
    CARE_COORDINATION = "care_coordination"
    SAFEGUARDING_CHILDREN = "safeguarding_children"
    SAFEGUARDING_ADULTS = "safeguarding_adults"
    OFFENDER_MANAGEMENT = "offender_management"
    COMMISSIONING = "commissioning"


class Article6(StrEnum):
    """UK GDPR Art. 6(1) lawful bases."""

    CONSENT = "6(1)(a) consent"
    CONTRACT = "6(1)(b) contract"
    LEGAL_OBLIGATION = "6(1)(c) legal obligation"
    VITAL_INTERESTS = "6(1)(d) vital interests"
    PUBLIC_TASK = "6(1)(e) public task"
    LEGITIMATE_INTERESTS = "6(1)(f) legitimate interests"


class Article9(StrEnum):
    """UK GDPR Art. 9(2) conditions for special category (health) data."""

    EXPLICIT_CONSENT = "9(2)(a) explicit consent"
    SOCIAL_PROTECTION = "9(2)(b) employment, social security and social protection law"
    VITAL_INTERESTS = "9(2)(c) vital interests"
    SUBSTANTIAL_PUBLIC_INTEREST = "9(2)(g) substantial public interest (DPA 2018 Sch. 1 Pt 2)"
    HEALTH_OR_SOCIAL_CARE = "9(2)(h) health or social care"
    PUBLIC_HEALTH = "9(2)(i) public health"


class Article10(StrEnum):
    """UK GDPR Art. 10 / DPA 2018 Sch. 1 conditions for criminal offence data."""

    CONSENT = "Sch. 1 para 29 consent"
    PREVENTING_OR_DETECTING_CRIME = "Sch. 1 para 10 preventing or detecting unlawful acts"
    STATUTORY_PURPOSES = "Sch. 1 para 6 statutory and government purposes"
    SAFEGUARDING = "Sch. 1 para 18 safeguarding of children and individuals at risk"
    HEALTH_OR_SOCIAL_CARE = "Sch. 1 para 2 health or social care purposes"


class LegalDuty(StrEnum):
    """Statutory duties under which sharing goes ahead without the client's consent."""

    CHILDREN_ACT_S47 = "Children Act 1989 s.47 (child at risk of significant harm)"
    CHILDREN_ACT_S17 = "Children Act 1989 s.17 / Working Together (child in need)"
    CARE_ACT_S42 = "Care Act 2014 s.42 (adult safeguarding enquiry)"


class ConsentObtained(StrEnum):
    """How the client's consent was obtained and recorded."""

    WRITTEN = "written"
    VERBAL = "verbal"
    ELECTRONIC = "electronic"
