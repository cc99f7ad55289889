//! Placeholder replaced by the solar implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SolarEvent {
    DawnAstronomical,
    DawnNautical,
    DawnCivil,
    Sunrise,
    SolarNoon,
    Sunset,
    DuskCivil,
    DuskNautical,
    DuskAstronomical,
}
impl SolarEvent {
    pub const ALL: [SolarEvent; 9] = [
        SolarEvent::DawnAstronomical,
        SolarEvent::DawnNautical,
        SolarEvent::DawnCivil,
        SolarEvent::Sunrise,
        SolarEvent::SolarNoon,
        SolarEvent::Sunset,
        SolarEvent::DuskCivil,
        SolarEvent::DuskNautical,
        SolarEvent::DuskAstronomical,
    ];
    pub fn name(self) -> &'static str {
        "sunrise"
    }
    pub fn from_name(_s: &str) -> Option<SolarEvent> {
        None
    }
}
#[derive(Debug, thiserror::Error)]
#[error("solar")]
pub struct SolarError;
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solar {
    pub event: SolarEvent,
    pub latitude: f64,
    pub longitude: f64,
}
impl Solar {
    pub fn new(event: SolarEvent, latitude: f64, longitude: f64) -> Result<Solar, SolarError> {
        Ok(Solar {
            event,
            latitude,
            longitude,
        })
    }
    pub fn next_after(&self, _after: jiff::Timestamp) -> Option<jiff::Timestamp> {
        None
    }
}
