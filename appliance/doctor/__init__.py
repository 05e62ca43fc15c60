"""``appliance-cli doctor``: checks the machine, the sound devices, the models, the engines and the service,
one line each with the fix for anything wrong."""

from appliance.doctor.result import CheckResult, Status
from appliance.doctor.run import DoctorOptions, run_doctor

__all__ = ["CheckResult", "DoctorOptions", "Status", "run_doctor"]
