"""Data categories: the unit in which agreements and consents share information.

Every fact in the log belongs to exactly one category. Categories are what a
data-sharing agreement lists, what a client consents to, and what the policy
decides on, so they follow the partnership's own way of talking about data
(DESIGN.md, "Data categories and the event catalogue").
"""

from enum import StrEnum


class DataCategory(StrEnum):
    IDENTITY = "identity"
    DEMOGRAPHICS = "demographics"
    REFERRAL = "referral"
    TREATMENT = "treatment"
    PRESCRIBING = "prescribing"
    CLINICAL_NOTES = "clinical_notes"
    MENTAL_HEALTH = "mental_health"
    CRIMINAL_JUSTICE = "criminal_justice"
    SAFEGUARDING_CHILDREN = "safeguarding_children"
    SAFEGUARDING_ADULTS = "safeguarding_adults"
    DOMESTIC_ABUSE = "domestic_abuse"
    HOUSING = "housing"
    EMPLOYMENT = "employment"
    BLOOD_BORNE_VIRUSES = "blood_borne_viruses"
    OUTCOMES = "outcomes"
    CONSENT = "consent"


#: Categories that are "special category" health data (UK GDPR Art. 9).
HEALTH_CATEGORIES = frozenset(
    {
        DataCategory.TREATMENT,
        DataCategory.PRESCRIBING,
        DataCategory.CLINICAL_NOTES,
        DataCategory.MENTAL_HEALTH,
        DataCategory.BLOOD_BORNE_VIRUSES,
        DataCategory.OUTCOMES,
        DataCategory.REFERRAL,
    }
)

#: Criminal offence data (UK GDPR Art. 10).
CRIMINAL_OFFENCE_CATEGORIES = frozenset({DataCategory.CRIMINAL_JUSTICE})

#: Never shared by agreement: only the controller (and emergency access) sees these.
NEVER_SHARED_BY_AGREEMENT = frozenset({DataCategory.CLINICAL_NOTES})
