//! Reception kinds (受付区分) of the national system and the facts that follow from each kind:
//! which device runs the flow, whether visual check is allowed, whether medical information can
//! be consented to at all.

use serde::{Deserialize, Serialize};

/// One reception kind. The wire and database form is the `code()` string, stable forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceptionKind {
    /// オンライン診療等 — the patient's own device, PIN only.
    OnlineCare,
    /// 外来・通常とは異なる動線 (fever lane, drive-through).
    SeparateRoute,
    /// 機器故障時等 — the face-recognition reader is broken or cannot be used.
    DeviceFailure,
    /// 訪問診療等 — regular home visits, continuing window.
    HomeVisit,
    /// 往診 — house call, 24-hour window.
    HouseCall,
    /// 資格確認限定型 — eligibility only, no medical information.
    EligibilityOnly,
}

/// Where a reception kind may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    PatientOnly,
    PatientOrInstitution,
    InstitutionOnly,
}

impl ReceptionKind {
    pub const ALL: [ReceptionKind; 6] = [
        ReceptionKind::OnlineCare,
        ReceptionKind::SeparateRoute,
        ReceptionKind::DeviceFailure,
        ReceptionKind::HomeVisit,
        ReceptionKind::HouseCall,
        ReceptionKind::EligibilityOnly,
    ];

    /// The stable code used in URLs, the database and the backend contract.
    pub const fn code(self) -> &'static str {
        match self {
            ReceptionKind::OnlineCare => "online_care",
            ReceptionKind::SeparateRoute => "separate_route",
            ReceptionKind::DeviceFailure => "device_failure",
            ReceptionKind::HomeVisit => "home_visit",
            ReceptionKind::HouseCall => "house_call",
            ReceptionKind::EligibilityOnly => "eligibility_only",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Which device runs the flow (SPEC §2).
    pub const fn device(self) -> Device {
        match self {
            ReceptionKind::OnlineCare => Device::PatientOnly,
            ReceptionKind::SeparateRoute => Device::PatientOrInstitution,
            _ => Device::InstitutionOnly,
        }
    }

    /// Visual check (目視確認) is allowed for this kind, on an institution device only.
    pub const fn allows_visual_check(self) -> bool {
        !matches!(self, ReceptionKind::OnlineCare)
    }

    /// The patient chooses a visit date (online care); other kinds register for today.
    pub const fn asks_visit_date(self) -> bool {
        matches!(self, ReceptionKind::OnlineCare)
    }

    /// The patient chooses how the prescription is issued (online care only).
    pub const fn asks_prescription_method(self) -> bool {
        matches!(self, ReceptionKind::OnlineCare)
    }

    /// Medical information can be consented to at all.
    pub const fn offers_medical_information(self) -> bool {
        !matches!(self, ReceptionKind::EligibilityOnly)
    }

    /// Kinds governed by the feature switch
    /// 「オンライン診療等・外来診療等（通常とは異なる動線）機能を利用する」.
    pub const fn behind_feature_switch(self) -> bool {
        matches!(
            self,
            ReceptionKind::OnlineCare | ReceptionKind::SeparateRoute
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for kind in ReceptionKind::ALL {
            assert_eq!(ReceptionKind::from_code(kind.code()), Some(kind));
        }
        let mut codes: Vec<_> = ReceptionKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ReceptionKind::ALL.len());
        assert_eq!(ReceptionKind::from_code("ONLINE_CARE"), None);
        assert_eq!(ReceptionKind::from_code(""), None);
    }

    #[test]
    fn serde_form_is_the_code() {
        for kind in ReceptionKind::ALL {
            let json = serde_json::to_string(&kind).expect("serialising a unit enum");
            assert_eq!(json, format!("\"{}\"", kind.code()));
            let back: ReceptionKind = serde_json::from_str(&json).expect("round trip");
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn only_online_care_asks_for_date_and_forbids_visual_check() {
        for kind in ReceptionKind::ALL {
            let online = kind == ReceptionKind::OnlineCare;
            assert_eq!(kind.asks_visit_date(), online);
            assert_eq!(kind.allows_visual_check(), !online);
        }
        assert!(!ReceptionKind::EligibilityOnly.offers_medical_information());
    }
}
