"""A NIfTI file that carries a DICOM header extension (code 2), read where nibabel was imported without
pydicom (io/nibabel_without_pydicom.py): the scan loads, pydicom stays unloaded, and a mask written on
that header keeps the extension's bytes unchanged."""

import struct
import subprocess
import sys

import nibabel as nib
import numpy as np

#: one implicit-VR little-endian element, (0010,0010) PatientName = "rat1"
DICOM_BYTES = struct.pack("<HHI", 0x0010, 0x0010, 4) + b"rat1"


def test_a_nifti_with_a_dicom_extension_loads_and_keeps_it_without_pydicom(tmp_path):
    source, written = tmp_path / "sub-rat01_T2w.nii.gz", tmp_path / "sub-rat01_mask.nii.gz"
    img = nib.Nifti1Image(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6), np.diag([0.2, 0.2, 1.0, 1.0]))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(2, DICOM_BYTES))
    nib.save(img, source)
    code = f"""
import sys
import numpy as np
from napari_hcc.io.atomic import save_nifti
from napari_hcc.io.masks import mask_image
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.volume import load_volume
vol = load_volume({str(source)!r})
header = nib.load({str(source)!r}).header
save_nifti(mask_image(vol.data > 60, vol.affine, header), {str(written)!r})
before = header.extensions[0].get_content()
after = nib.load({str(written)!r}).header.extensions[0].get_content()
print(vol.data.shape, float(vol.data.max()), 'pydicom' in sys.modules, before == after, before[:12] == {DICOM_BYTES!r})
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "(4, 5, 6) 119.0 False True True", out.stderr
    mask = nib.load(written)
    assert mask.header.extensions[0].get_code() == 2
    assert int(np.asarray(mask.dataobj).sum()) == 119 - 60
