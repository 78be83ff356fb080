"""The Classes page text: what each class is and how it typically looks on MRI, with references.

Written for learners. Typical appearances are tendencies, not rules: every sign below has
exceptions, and several tumour types (and non-tumour conditions) can look alike. The
datasets this project trains on are single 2-D slices, mostly contrast-enhanced T1, without
the other sequences, the clinical history or prior scans a radiologist would use.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuropathology.data.discovery import KAGGLE_4CLASS_ALIASES

NOTICE = ("**Research and education only - not for diagnosis.** This app is not a medical "
          "device. Its output must never be used for a diagnosis, a treatment decision or any "
          "other clinical purpose. Anyone with a health concern should see a clinician.")


@dataclass(frozen=True)
class ClassInfo:
    title: str
    what: str
    mri: tuple[str, ...]
    refs: tuple[int, ...]  #: indices into REFERENCES (1-based)


CLASS_INFO: dict[str, ClassInfo] = {
    "glioma": ClassInfo(
        title="Glioma",
        what=("Tumours arising from glial (supporting) cells of the brain. The WHO "
              "classification of 2021 (CNS5) defines the common adult types by histology "
              "*and* molecular markers together: astrocytoma, IDH-mutant; oligodendroglioma, "
              "IDH-mutant and 1p/19q-codeleted; and glioblastoma, IDH-wildtype, with CNS WHO "
              "grades 1 to 4 assigned within each type. Behaviour ranges from slow-growing to "
              "highly aggressive."),
        mri=("Intra-axial: the mass lies within the brain tissue itself, most often in the "
             "white matter of the cerebral hemispheres.",
             "Lower-grade gliomas are typically T2/FLAIR hyperintense with ill-defined, "
             "infiltrative margins and little or no contrast enhancement.",
             "Glioblastoma typically shows a thick, irregular rim of enhancement around a "
             "non-enhancing necrotic centre on contrast-enhanced T1, with surrounding T2/FLAIR "
             "signal change (oedema and infiltrating tumour) and mass effect; it may spread "
             "across the corpus callosum.",
             "Enhancement alone does not give the grade: some lower-grade tumours enhance and "
             "some high-grade ones do not."),
        refs=(1, 2),
    ),
    "meningioma": ClassInfo(
        title="Meningioma",
        what=("Tumours arising from the meninges, the membranes covering the brain (from "
              "arachnoid cap cells). They are the most common primary intracranial tumour in "
              "adults. Most are CNS WHO grade 1 and grow slowly; grades 2 and 3 are less "
              "common and more likely to recur."),
        mri=("Extra-axial: outside the brain tissue, attached to the dura with a broad base, "
             "pushing the brain inwards rather than growing through it; a thin rim of CSF or "
             "vessels may separate tumour and brain.",
             "Well circumscribed, usually iso- to slightly hypointense to grey matter on T1, "
             "variable on T2.",
             "Strong, usually homogeneous enhancement after contrast, often with a 'dural "
             "tail' (enhancing thickened dura next to the mass) - common but not specific.",
             "Typical sites: cerebral convexity, along the falx (parasagittal), sphenoid wing, "
             "olfactory groove, tentorium; calcification and thickening of adjacent bone "
             "occur."),
        refs=(1, 2, 4),
    ),
    "pituitary": ClassInfo(
        title="Pituitary tumour",
        what=("In these datasets, mostly pituitary adenomas, which the WHO classifications "
              "of 2021-2022 rename pituitary neuroendocrine tumours (PitNETs). They arise in "
              "the anterior pituitary gland in the sella turcica. Most are benign; they "
              "matter through hormone excess or by pressing on nearby structures such as the "
              "optic chiasm."),
        mri=("Located in the sella turcica at the skull base, in the midline, below the "
             "optic chiasm.",
             "Microadenomas (under 10 mm) are best seen on dedicated thin-slice sellar imaging; "
             "after contrast they usually enhance less or later than the normal gland.",
             "Macroadenomas (10 mm or more) enlarge the sella and may grow upwards, sometimes "
             "with a waist at the diaphragma sellae ('snowman' or figure-of-eight shape), "
             "compress the optic chiasm, or extend sideways into the cavernous sinus.",
             "On axial slices through the brain only the larger tumours are visible, near the "
             "skull base between the temporal lobes."),
        refs=(1, 3),
    ),
    "no_tumor": ClassInfo(
        title="No tumour",
        what=("Slices in which no tumour of the other classes is visible. This is not the same "
              "as 'normal': the model only chooses between its classes, so a stroke, a "
              "haemorrhage, multiple sclerosis or a tumour type it was not trained on can be "
              "labelled 'no tumour' or forced into a tumour class."),
        mri=("Symmetric hemispheres, no mass effect or midline shift, ventricles and sulci "
             "appropriate for age.",
             "No abnormal enhancement; normal enhancement of vessels, choroid plexus, dura and "
             "the pituitary gland is expected on contrast-enhanced T1.",
             "One slice cannot exclude a tumour elsewhere in the brain."),
        refs=(2,),
    ),
}

#: (citation, link) in the order cited above.
REFERENCES: tuple[tuple[str, str], ...] = (
    ("Louis DN, Perry A, Wesseling P, et al. The 2021 WHO Classification of Tumors of the "
     "Central Nervous System: a summary. Neuro-Oncology. 2021;23(8):1231-1251.",
     "https://doi.org/10.1093/neuonc/noab106"),
    ("Ostrom QT, Price M, Neff C, et al. CBTRUS Statistical Report: Primary Brain and Other "
     "Central Nervous System Tumors Diagnosed in the United States in 2015-2019. "
     "Neuro-Oncology. 2022;24(Suppl 5):v1-v95.",
     "https://doi.org/10.1093/neuonc/noac202"),
    ("Asa SL, Mete O, Perry A, Osamura RY. Overview of the 2022 WHO Classification of "
     "Pituitary Tumors. Endocrine Pathology. 2022;33(1):6-26.",
     "https://doi.org/10.1007/s12022-022-09703-7"),
    ("Goldbrunner R, Stavrinou P, Jenkinson MD, et al. EANO guideline on the diagnosis and "
     "management of meningiomas. Neuro-Oncology. 2021;23(11):1821-1834.",
     "https://doi.org/10.1093/neuonc/noab150"),
)

def canonical(class_name: str) -> str:
    """A run's class name -> the key of :data:`CLASS_INFO` (the Kaggle spellings that
    ``neuropathology.data.discovery.KAGGLE_4CLASS_ALIASES`` maps are accepted)."""
    key = class_name.strip().lower()
    return KAGGLE_4CLASS_ALIASES.get(key, key.replace(" ", "_").replace("-", "_"))


def info_for(class_name: str) -> ClassInfo | None:
    return CLASS_INFO.get(canonical(class_name))
